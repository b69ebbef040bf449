package icebridge.restcatalog;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * What a served catalog is: its name (the JDBC catalog name, and the REST prefix and warehouse), where its
 * new tables go, which contract it follows, whether it takes writes, and what storage credentials it vends.
 */
final class CatalogSpec {
  /** The two contracts a catalog can follow. */
  enum Flavor {
    /** The Iceberg REST catalog: multi-level namespaces, register, views. */
    ICEBERG,
    /**
     * Unity Catalog's Iceberg REST endpoint: warehouse = catalog name, namespaces are schemas (one level),
     * no register and no views, credentials vended with each table.
     */
    UNITY
  }

  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9_-]{0,127}");

  final String name;
  final String location;
  final Flavor flavor;
  final boolean readOnly;
  final Map<String, String> vendedCredentials;

  CatalogSpec(
      String name, String location, Flavor flavor, boolean readOnly, Map<String, String> vendedCredentials) {
    if (name == null || !NAME.matcher(name).matches()) {
      throw new IllegalArgumentException(
          "catalog name " + name + " must be 1-128 letters, digits, '_' or '-' (it is also a URL prefix)");
    }
    if (location == null || location.isEmpty()) {
      throw new IllegalArgumentException("catalog " + name + ": a location (e.g. file:/srv/warehouse) is required");
    }
    this.name = name;
    this.location = location.endsWith("/") ? location.substring(0, location.length() - 1) : location;
    this.flavor = flavor;
    this.readOnly = readOnly;
    this.vendedCredentials = Collections.unmodifiableMap(new LinkedHashMap<>(vendedCredentials));
  }

  boolean vends() {
    return !vendedCredentials.isEmpty();
  }

  /** {@code name=NAME,location=URI[,flavor=iceberg|unity][,read-only=true]}, as given on the command line. */
  static CatalogSpec parse(String text) {
    Map<String, String> fields = new LinkedHashMap<>();
    for (String part : text.split(",")) {
      int eq = part.indexOf('=');
      if (eq <= 0) {
        throw new Main.UsageException("--catalog " + text + ": expected key=value pairs separated by commas");
      }
      fields.put(part.substring(0, eq).trim(), part.substring(eq + 1).trim());
    }
    try {
      return new CatalogSpec(
          fields.get("name"),
          fields.get("location"),
          flavor(fields.getOrDefault("flavor", "iceberg")),
          Boolean.parseBoolean(fields.getOrDefault("read-only", "false")),
          Map.of());
    } catch (IllegalArgumentException e) {
      throw new Main.UsageException("--catalog " + text + ": " + e.getMessage());
    }
  }

  static Flavor flavor(String text) {
    switch (text.toLowerCase()) {
      case "iceberg":
        return Flavor.ICEBERG;
      case "unity":
        return Flavor.UNITY;
      default:
        throw new IllegalArgumentException("flavor " + text + " is neither iceberg nor unity");
    }
  }
}
