package icebridge.restcatalog;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.hadoop.conf.Configuration;
import org.apache.iceberg.jdbc.JdbcCatalog;

/** The served catalogs by name; each is a JdbcCatalog of that name on the one shared database. */
final class Catalogs {
  /** A catalog being served: what it is, and the JdbcCatalog answering for it. */
  static final class Served {
    final CatalogSpec spec;
    final JdbcCatalog catalog;

    Served(CatalogSpec spec, JdbcCatalog catalog) {
      this.spec = spec;
      this.catalog = catalog;
    }
  }

  /** HTTP workers of the server (each served catalog has half as many database connections). */
  static final int WORKERS = 16;

  private final String jdbcUri;
  private final String jdbcUser;
  private final String jdbcPassword;
  private final Map<String, Served> served = new ConcurrentHashMap<>();

  Catalogs(String jdbcUri, String jdbcUser, String jdbcPassword) {
    this.jdbcUri = jdbcUri;
    this.jdbcUser = jdbcUser;
    this.jdbcPassword = jdbcPassword;
  }

  Served get(String name) {
    return served.get(name);
  }

  List<String> names() {
    List<String> names = new ArrayList<>(served.keySet());
    names.sort(null);
    return names;
  }

  /** Start serving a catalog; its tables (rows of that catalog name) may already exist in the database. */
  synchronized Served add(CatalogSpec spec) {
    if (served.containsKey(spec.name)) {
      throw new org.apache.iceberg.exceptions.AlreadyExistsException("Catalog %s already exists", spec.name);
    }
    Map<String, String> props = new HashMap<>();
    props.put("uri", jdbcUri);
    if (jdbcUser != null) {
      props.put("jdbc.user", jdbcUser);
    }
    if (jdbcPassword != null) {
      props.put("jdbc.password", jdbcPassword);
    }
    props.put("warehouse", spec.location);
    // V1 keeps views and the iceberg_type column PyIceberg's SQL catalog also writes, so both can share rows
    props.put("jdbc.schema-version", "V1");
    // with 2 connections, thread dumps taken during an inventory of 10,000 tables showed loads queued for
    // one; half a connection per worker, as a load holds one only to look up the metadata location
    props.put("clients", Integer.toString(WORKERS / 2));
    JdbcCatalog catalog = new JdbcCatalog();
    catalog.setConf(hadoopConf());
    catalog.initialize(spec.name, props);
    Served entry = new Served(spec, catalog);
    served.put(spec.name, entry);
    return entry;
  }

  /** Stop serving a catalog (its tables stay in the database and its files where they are). */
  synchronized boolean remove(String name) {
    Served entry = served.remove(name);
    if (entry == null) {
      return false;
    }
    close(entry);
    return true;
  }

  synchronized void closeAll() {
    List<String> names = new ArrayList<>(served.keySet());
    for (String name : names) {
      remove(name);
    }
  }

  private static void close(Served entry) {
    try {
      entry.catalog.close();
    } catch (Exception e) {
      // the connection pool is going away with the catalog; nothing else holds it
    }
  }

  private static Configuration hadoopConf() {
    Configuration conf = new Configuration();
    // the raw local file system writes no .crc side files next to the metadata the server commits
    conf.set("fs.file.impl", "org.apache.hadoop.fs.RawLocalFileSystem");
    conf.setBoolean("fs.file.impl.disable.cache", true);
    return conf;
  }
}
