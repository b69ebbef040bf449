package icebridge.restcatalog;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/** Bearer tokens: the fixed ones of the command line, and those issued by the client-credentials grant. */
final class Tokens {
  private final Set<String> fixed;
  private final Map<String, String> clients;
  private final int lifetimeSeconds;
  private final Map<String, Long> issued = new ConcurrentHashMap<>();
  private final SecureRandom random = new SecureRandom();

  Tokens(List<String> fixed, Map<String, String> clients, int lifetimeSeconds) {
    this.fixed = new HashSet<>(fixed);
    this.clients = Map.copyOf(clients);
    this.lifetimeSeconds = lifetimeSeconds;
  }

  /** Whether requests must carry a token at all. */
  boolean required() {
    return !fixed.isEmpty() || !clients.isEmpty();
  }

  int lifetimeSeconds() {
    return lifetimeSeconds;
  }

  /** Whether an {@code Authorization} header carries a token this server accepts and that has not expired. */
  boolean accepts(String authorization) {
    if (authorization == null || !authorization.regionMatches(true, 0, "Bearer ", 0, 7)) {
      return false;
    }
    String token = authorization.substring(7).trim();
    if (fixed.contains(token)) {
      return true;
    }
    Long expires = issued.get(token);
    if (expires == null) {
      return false;
    }
    if (System.currentTimeMillis() >= expires) {
      issued.remove(token);
      return false;
    }
    return true;
  }

  /** A new token for a known client whose secret matches, else null. */
  String issue(String clientId, String secret) {
    String expected = clientId == null ? null : clients.get(clientId);
    if (expected == null || secret == null || !sameBytes(expected, secret)) {
      return null;
    }
    byte[] bytes = new byte[24];
    random.nextBytes(bytes);
    String token = Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
    issued.put(token, System.currentTimeMillis() + lifetimeSeconds * 1000L);
    return token;
  }

  private static boolean sameBytes(String a, String b) {
    return MessageDigest.isEqual(a.getBytes(StandardCharsets.UTF_8), b.getBytes(StandardCharsets.UTF_8));
  }
}
