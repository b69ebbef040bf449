package icebridge.restcatalog;

import com.sun.net.httpserver.HttpServer;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * An Iceberg REST catalog server for IceBridge's tests: a thin HTTP front over Iceberg's own server-side
 * request handlers ({@code CatalogHandlers}), each named catalog backed by a {@code JdbcCatalog}.
 *
 * <p>It serves two contracts from one process: the Iceberg REST catalog ({@code /v1/...}) and Unity
 * Catalog's Iceberg REST endpoint ({@code /api/2.1/unity-catalog/iceberg-rest/v1/...}). Catalogs are added
 * and removed at run time through {@code /manage/catalogs}, so one server can give every test its own.
 *
 * <p>When it is listening it prints one line, {@code READY <base url>}, on standard output.
 */
public final class Main {
  private Main() {}

  static final String USAGE =
      String.join(
          "\n",
          "usage: rest-catalog --jdbc-uri URI [options]",
          "  --jdbc-uri URI        JDBC URL of the database holding every catalog (e.g. jdbc:postgresql://127.0.0.1:5432/db)",
          "  --jdbc-user NAME      database user",
          "  --jdbc-password PASS  database password",
          "  --host HOST           address to listen on (default 127.0.0.1)",
          "  --port N              port to listen on; 0 picks a free one (default 0)",
          "  --token TOKEN         a bearer token the server accepts (repeatable)",
          "  --client ID:SECRET    an OAuth2 client allowed the client-credentials grant (repeatable)",
          "  --token-seconds N     lifetime of the tokens /v1/oauth/tokens issues (default 3600)",
          "  --catalog SPEC        a catalog to serve from the start (repeatable), SPEC being",
          "                        name=NAME,location=URI[,flavor=iceberg|unity][,read-only=true]",
          "With no --token and no --client, requests need no authentication.");

  /** The command line, checked. */
  static final class Settings {
    String jdbcUri;
    String jdbcUser;
    String jdbcPassword;
    String host = "127.0.0.1";
    int port = 0;
    final List<String> tokens = new ArrayList<>();
    final Map<String, String> clients = new LinkedHashMap<>();
    int tokenSeconds = 3600;
    final List<CatalogSpec> catalogs = new ArrayList<>();

    static Settings parse(String[] args) {
      Settings settings = new Settings();
      for (int i = 0; i < args.length; i += 1) {
        String flag = args[i];
        if (flag.equals("--help") || flag.equals("-h")) {
          throw new UsageException(null);
        }
        if (i + 1 >= args.length) {
          throw new UsageException(flag + " needs a value");
        }
        String value = args[++i];
        switch (flag) {
          case "--jdbc-uri":
            settings.jdbcUri = value;
            break;
          case "--jdbc-user":
            settings.jdbcUser = value;
            break;
          case "--jdbc-password":
            settings.jdbcPassword = value;
            break;
          case "--host":
            settings.host = value;
            break;
          case "--port":
            settings.port = number(flag, value);
            break;
          case "--token":
            settings.tokens.add(value);
            break;
          case "--client":
            int colon = value.indexOf(':');
            if (colon <= 0 || colon == value.length() - 1) {
              throw new UsageException("--client " + value + ": expected ID:SECRET");
            }
            settings.clients.put(value.substring(0, colon), value.substring(colon + 1));
            break;
          case "--token-seconds":
            settings.tokenSeconds = number(flag, value);
            break;
          case "--catalog":
            settings.catalogs.add(CatalogSpec.parse(value));
            break;
          default:
            throw new UsageException("unknown option " + flag);
        }
      }
      if (settings.jdbcUri == null) {
        throw new UsageException("--jdbc-uri is required");
      }
      return settings;
    }

    private static int number(String flag, String value) {
      try {
        int parsed = Integer.parseInt(value);
        if (parsed < 0) {
          throw new NumberFormatException();
        }
        return parsed;
      } catch (NumberFormatException e) {
        throw new UsageException(flag + " " + value + ": expected a whole number >= 0");
      }
    }
  }

  /** A command-line mistake: printed with the usage, exit code 2. */
  static final class UsageException extends RuntimeException {
    UsageException(String message) {
      super(message);
    }
  }

  public static void main(String[] args) throws Exception {
    Settings settings;
    try {
      settings = Settings.parse(args);
    } catch (UsageException e) {
      PrintStream out = e.getMessage() == null ? System.out : System.err;
      if (e.getMessage() != null) {
        out.println("rest-catalog: " + e.getMessage());
      }
      out.println(USAGE);
      System.exit(e.getMessage() == null ? 0 : 2);
      return;
    }

    Catalogs catalogs = new Catalogs(settings.jdbcUri, settings.jdbcUser, settings.jdbcPassword);
    for (CatalogSpec spec : settings.catalogs) {
      catalogs.add(spec);
    }
    Tokens tokens = new Tokens(settings.tokens, settings.clients, settings.tokenSeconds);
    HttpServer server = HttpServer.create(new InetSocketAddress(settings.host, settings.port), 64);
    // JdbcCatalog and the handlers are thread-safe; workers let a client's parallel loads overlap. A
    // load is mostly waiting (on the database, on reading the metadata file), so there are more workers
    // than cores: a client inventorying with 32 loads in flight kept 8 workers busy and its own threads
    // waiting for them.
    ExecutorService workers = Executors.newFixedThreadPool(Catalogs.WORKERS);
    server.setExecutor(workers);
    server.createContext("/", new Router(catalogs, tokens));
    server.start();
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  server.stop(0);
                  workers.shutdownNow();
                  catalogs.closeAll();
                }));
    String base = "http://" + settings.host + ":" + server.getAddress().getPort();
    PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
    out.println("READY " + base);
  }
}
