package icebridge.restcatalog;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import java.io.IOException;
import java.io.OutputStream;
import java.lang.reflect.Method;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.iceberg.catalog.Namespace;
import org.apache.iceberg.catalog.TableIdentifier;
import org.apache.iceberg.exceptions.AlreadyExistsException;
import org.apache.iceberg.exceptions.BadRequestException;
import org.apache.iceberg.exceptions.CommitFailedException;
import org.apache.iceberg.exceptions.ForbiddenException;
import org.apache.iceberg.exceptions.NamespaceNotEmptyException;
import org.apache.iceberg.exceptions.NoSuchNamespaceException;
import org.apache.iceberg.exceptions.NoSuchTableException;
import org.apache.iceberg.exceptions.NoSuchViewException;
import org.apache.iceberg.exceptions.NotAuthorizedException;
import org.apache.iceberg.exceptions.NotFoundException;
import org.apache.iceberg.exceptions.ValidationException;
import org.apache.iceberg.rest.CatalogHandlers;
import org.apache.iceberg.rest.RESTUtil;
import org.apache.iceberg.rest.requests.CreateNamespaceRequest;
import org.apache.iceberg.rest.requests.CreateTableRequest;
import org.apache.iceberg.rest.requests.CreateViewRequest;
import org.apache.iceberg.rest.requests.RegisterTableRequest;
import org.apache.iceberg.rest.requests.RenameTableRequest;
import org.apache.iceberg.rest.requests.UpdateNamespacePropertiesRequest;
import org.apache.iceberg.rest.requests.UpdateTableRequest;
import org.apache.iceberg.rest.responses.ErrorResponse;
import org.apache.iceberg.rest.responses.LoadTableResponse;
import org.apache.iceberg.shaded.com.fasterxml.jackson.core.JsonProcessingException;
import org.apache.iceberg.shaded.com.fasterxml.jackson.databind.JsonNode;
import org.apache.iceberg.shaded.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.iceberg.shaded.com.fasterxml.jackson.databind.node.ArrayNode;
import org.apache.iceberg.shaded.com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * Routes REST requests to Iceberg's {@code CatalogHandlers}, after authentication and the contract's own
 * rules (Unity Catalog's one-level namespaces, read-only foreign catalogs, no register, vended credentials).
 */
final class Router implements HttpHandler {
  static final String UNITY_BASE = "/api/2.1/unity-catalog/iceberg-rest";
  private static final String MANAGE = "/manage/catalogs";
  private static final String DELEGATION_HEADER = "X-Iceberg-Access-Delegation";

  private static final List<String> TABLE_ENDPOINTS =
      List.of(
          "GET /v1/{prefix}/namespaces",
          "POST /v1/{prefix}/namespaces",
          "GET /v1/{prefix}/namespaces/{namespace}",
          "HEAD /v1/{prefix}/namespaces/{namespace}",
          "DELETE /v1/{prefix}/namespaces/{namespace}",
          "POST /v1/{prefix}/namespaces/{namespace}/properties",
          "GET /v1/{prefix}/namespaces/{namespace}/tables",
          "POST /v1/{prefix}/namespaces/{namespace}/tables",
          "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
          "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
          "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}",
          "DELETE /v1/{prefix}/namespaces/{namespace}/tables/{table}",
          "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics",
          "POST /v1/{prefix}/tables/rename");
  private static final List<String> REGISTER_ENDPOINTS = List.of("POST /v1/{prefix}/namespaces/{namespace}/register");
  private static final List<String> VIEW_ENDPOINTS =
      List.of(
          "GET /v1/{prefix}/namespaces/{namespace}/views",
          "POST /v1/{prefix}/namespaces/{namespace}/views",
          "GET /v1/{prefix}/namespaces/{namespace}/views/{view}",
          "HEAD /v1/{prefix}/namespaces/{namespace}/views/{view}",
          "POST /v1/{prefix}/namespaces/{namespace}/views/{view}",
          "DELETE /v1/{prefix}/namespaces/{namespace}/views/{view}",
          "POST /v1/{prefix}/views/rename");
  private static final List<String> CREDENTIAL_ENDPOINTS =
      List.of("GET /v1/{prefix}/namespaces/{namespace}/tables/{table}/credentials");

  /** An HTTP answer: a status and an optional JSON body. */
  private static final class Reply {
    final int status;
    final byte[] body;

    Reply(int status, byte[] body) {
      this.status = status;
      this.body = body;
    }
  }

  /** A request the contract does not serve (the Iceberg REST spec answers 406 for these). */
  private static final class Unsupported extends RuntimeException {
    Unsupported(String message) {
      super(message);
    }
  }

  private final Catalogs catalogs;
  private final Tokens tokens;
  private final ObjectMapper mapper;

  Router(Catalogs catalogs, Tokens tokens) {
    this.catalogs = catalogs;
    this.tokens = tokens;
    this.mapper = restMapper();
  }

  /**
   * Iceberg's own mapper, with every REST request and response serializer registered; its class is
   * package-private, so it is reached by reflection.
   */
  private static ObjectMapper restMapper() {
    try {
      Class<?> holder = Class.forName("org.apache.iceberg.rest.RESTObjectMapper");
      Method method = holder.getDeclaredMethod("mapper");
      method.setAccessible(true);
      return (ObjectMapper) method.invoke(null);
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException("cannot reach Iceberg's REST object mapper", e);
    }
  }

  @Override
  public void handle(HttpExchange exchange) throws IOException {
    Reply reply;
    try {
      reply = route(exchange);
    } catch (Throwable failure) {
      reply = error(failure);
    }
    try {
      send(exchange, reply);
    } finally {
      exchange.close();
    }
  }

  private Reply route(HttpExchange exchange) throws IOException {
    String path = exchange.getRequestURI().getRawPath();
    String method = exchange.getRequestMethod().toUpperCase();
    CatalogSpec.Flavor flavor = CatalogSpec.Flavor.ICEBERG;
    if (path.equals(UNITY_BASE) || path.startsWith(UNITY_BASE + "/")) {
      flavor = CatalogSpec.Flavor.UNITY;
      path = path.substring(UNITY_BASE.length());
    }
    if (flavor == CatalogSpec.Flavor.ICEBERG && (path.equals(MANAGE) || path.startsWith(MANAGE + "/"))) {
      authenticate(exchange);
      return manage(exchange, method, segments(path.substring(MANAGE.length())));
    }
    if (!path.startsWith("/v1/")) {
      throw new NotFoundException("No endpoint %s %s", method, exchange.getRequestURI().getPath());
    }
    List<String> parts = segments(path.substring(3));
    if (parts.equals(List.of("oauth", "tokens")) && method.equals("POST")) {
      return token(exchange);
    }
    authenticate(exchange);
    if (parts.equals(List.of("config")) && method.equals("GET")) {
      return config(flavor, query(exchange));
    }
    if (parts.isEmpty()) {
      throw new NotFoundException("No endpoint %s %s", method, exchange.getRequestURI().getPath());
    }
    String prefix = RESTUtil.decodeString(parts.get(0));
    Catalogs.Served served = catalogs.get(prefix);
    if (served == null || served.spec.flavor != flavor) {
      throw new NotFoundException("Catalog %s does not exist at this endpoint", prefix);
    }
    return catalog(exchange, method, served, parts.subList(1, parts.size()));
  }

  // ------------------------------------------------------------------------------------ authentication

  private void authenticate(HttpExchange exchange) {
    if (tokens.required() && !tokens.accepts(exchange.getRequestHeaders().getFirst("Authorization"))) {
      throw new NotAuthorizedException("Not authorized: send a valid bearer token (Authorization: Bearer ...)");
    }
  }

  /** The OAuth2 client-credentials grant. Errors take OAuth2's own shape, not Iceberg's. */
  private Reply token(HttpExchange exchange) throws IOException {
    String body = new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
    Map<String, String> form = RESTUtil.decodeFormData(body);
    if (!"client_credentials".equals(form.get("grant_type"))) {
      return oauthError(400, "unsupported_grant_type", "only grant_type=client_credentials is supported");
    }
    String token = tokens.issue(form.get("client_id"), form.get("client_secret"));
    if (token == null) {
      return oauthError(401, "invalid_client", "unknown client_id or wrong client_secret");
    }
    ObjectNode answer = mapper.createObjectNode();
    answer.put("access_token", token);
    answer.put("token_type", "bearer");
    answer.put("issued_token_type", "urn:ietf:params:oauth:token-type:access_token");
    answer.put("expires_in", tokens.lifetimeSeconds());
    return json(200, answer);
  }

  private Reply oauthError(int status, String code, String description) throws JsonProcessingException {
    ObjectNode answer = mapper.createObjectNode();
    answer.put("error", code);
    answer.put("error_description", description);
    return json(status, answer);
  }

  // ------------------------------------------------------------------------------------ configuration

  /**
   * {@code GET /v1/config?warehouse=NAME}: the warehouse names the catalog, and the answer's overrides send
   * the client to {@code /v1/NAME/...}. Written by hand: Iceberg's {@code Endpoint} class cannot be loaded
   * from the runtime jar (it needs an HTTP client the jar does not carry).
   */
  private Reply config(CatalogSpec.Flavor flavor, Map<String, String> query) throws JsonProcessingException {
    String warehouse = query.get("warehouse");
    if (warehouse == null || warehouse.isEmpty()) {
      throw new BadRequestException(
          flavor == CatalogSpec.Flavor.UNITY
              ? "Unity Catalog needs the warehouse property: set 'warehouse' to the name of a catalog"
              : "Set the catalog property 'warehouse' to the name of a catalog this server serves");
    }
    Catalogs.Served served = catalogs.get(warehouse);
    if (served == null || served.spec.flavor != flavor) {
      throw new NotFoundException("Catalog %s does not exist at this endpoint", warehouse);
    }
    ObjectNode answer = mapper.createObjectNode();
    answer.putObject("defaults");
    answer.putObject("overrides").put("prefix", served.spec.name);
    ArrayNode endpoints = answer.putArray("endpoints");
    List<String> all = new ArrayList<>(TABLE_ENDPOINTS);
    if (flavor == CatalogSpec.Flavor.ICEBERG) {
      all.addAll(REGISTER_ENDPOINTS);
      all.addAll(VIEW_ENDPOINTS);
    }
    if (served.spec.vends()) {
      all.addAll(CREDENTIAL_ENDPOINTS);
    }
    all.forEach(endpoints::add);
    return json(200, answer);
  }

  // ------------------------------------------------------------------------------------ management

  /** {@code /manage/catalogs}: list (GET), add (POST a spec), remove ({@code DELETE /manage/catalogs/NAME}). */
  private Reply manage(HttpExchange exchange, String method, List<String> parts) throws IOException {
    if (parts.isEmpty() && method.equals("GET")) {
      ObjectNode answer = mapper.createObjectNode();
      ArrayNode names = answer.putArray("catalogs");
      for (String name : catalogs.names()) {
        names.add(name);
      }
      return json(200, answer);
    }
    if (parts.isEmpty() && method.equals("POST")) {
      JsonNode body = readTree(exchange);
      Map<String, String> vended = new LinkedHashMap<>();
      JsonNode credentials = body.path("vended-credentials");
      credentials.fieldNames().forEachRemaining(key -> vended.put(key, credentials.get(key).asText()));
      CatalogSpec spec =
          new CatalogSpec(
              text(body, "name"),
              text(body, "location"),
              CatalogSpec.flavor(body.path("flavor").asText("iceberg")),
              body.path("read-only").asBoolean(false),
              vended);
      catalogs.add(spec);
      ObjectNode answer = mapper.createObjectNode();
      answer.put("name", spec.name);
      answer.put("location", spec.location);
      answer.put("flavor", spec.flavor.name().toLowerCase());
      answer.put("read-only", spec.readOnly);
      return json(200, answer);
    }
    if (parts.size() == 1 && method.equals("DELETE")) {
      String name = RESTUtil.decodeString(parts.get(0));
      if (!catalogs.remove(name)) {
        throw new NotFoundException("Catalog %s does not exist", name);
      }
      return new Reply(204, null);
    }
    throw new NotFoundException("No endpoint %s %s%s", method, MANAGE, parts.isEmpty() ? "" : "/...");
  }

  // ------------------------------------------------------------------------------------ one catalog

  private Reply catalog(HttpExchange exchange, String method, Catalogs.Served served, List<String> parts)
      throws IOException {
    CatalogSpec spec = served.spec;
    boolean unity = spec.flavor == CatalogSpec.Flavor.UNITY;
    boolean write = !method.equals("GET") && !method.equals("HEAD");
    boolean metrics = parts.size() == 5 && parts.get(4).equals("metrics");
    if (spec.readOnly && write && !metrics) {
      throw new ForbiddenException("%s", readOnlyMessage(spec, parts));
    }
    int n = parts.size();
    if (n == 0) {
      throw new NotFoundException("No endpoint %s /v1/%s", method, spec.name);
    }
    String head = parts.get(0);
    if (head.equals("tables") && n == 2 && parts.get(1).equals("rename") && method.equals("POST")) {
      CatalogHandlers.renameTable(served.catalog, read(exchange, RenameTableRequest.class));
      return new Reply(204, null);
    }
    if (head.equals("views") && n == 2 && parts.get(1).equals("rename") && method.equals("POST")) {
      noViews(unity);
      CatalogHandlers.renameView(served.catalog, read(exchange, RenameTableRequest.class));
      return new Reply(204, null);
    }
    if (!head.equals("namespaces")) {
      throw new NotFoundException("No endpoint %s /v1/%s/%s", method, spec.name, head);
    }
    if (n == 1) {
      switch (method) {
        case "GET":
          return namespaces(served, query(exchange));
        case "POST":
          CreateNamespaceRequest request = read(exchange, CreateNamespaceRequest.class);
          if (unity && request.namespace().length() != 1) {
            throw new BadRequestException(
                "Unity Catalog namespaces are schemas: use one level (catalog.schema.table), not %s",
                request.namespace());
          }
          return json(200, CatalogHandlers.createNamespace(served.catalog, request));
        default:
          return notAllowed(method, parts);
      }
    }
    Namespace namespace = RESTUtil.decodeNamespace(parts.get(1));
    if (n == 2) {
      switch (method) {
        case "GET":
          return json(200, CatalogHandlers.loadNamespace(served.catalog, namespace));
        case "HEAD":
          CatalogHandlers.namespaceExists(served.catalog, namespace);
          return new Reply(204, null);
        case "DELETE":
          CatalogHandlers.dropNamespace(served.catalog, namespace);
          return new Reply(204, null);
        default:
          return notAllowed(method, parts);
      }
    }
    String kind = parts.get(2);
    if (n == 3 && kind.equals("properties") && method.equals("POST")) {
      UpdateNamespacePropertiesRequest request = read(exchange, UpdateNamespacePropertiesRequest.class);
      return json(200, CatalogHandlers.updateNamespaceProperties(served.catalog, namespace, request));
    }
    if (n == 3 && kind.equals("register") && method.equals("POST")) {
      if (unity) {
        throw new Unsupported("Unity Catalog does not support registerTable: create the table instead");
      }
      RegisterTableRequest request = read(exchange, RegisterTableRequest.class);
      return json(200, CatalogHandlers.registerTable(served.catalog, namespace, request));
    }
    if (kind.equals("tables")) {
      return tables(exchange, method, served, namespace, parts);
    }
    if (kind.equals("views")) {
      noViews(unity);
      return views(exchange, method, served, namespace, parts);
    }
    throw new NotFoundException("No endpoint %s /v1/%s/namespaces/.../%s", method, spec.name, kind);
  }

  private Reply namespaces(Catalogs.Served served, Map<String, String> query) throws JsonProcessingException {
    String parent = query.get("parent");
    Namespace namespace = parent == null || parent.isEmpty() ? Namespace.empty() : decodeNamespaceParam(parent);
    String pageSize = query.get("pageSize");
    if (pageSize != null) {
      return json(
          200, CatalogHandlers.listNamespaces(served.catalog, namespace, query.get("pageToken"), pageSize));
    }
    return json(200, CatalogHandlers.listNamespaces(served.catalog, namespace));
  }

  private Reply tables(
      HttpExchange exchange, String method, Catalogs.Served served, Namespace namespace, List<String> parts)
      throws IOException {
    int n = parts.size();
    if (n == 3) {
      switch (method) {
        case "GET":
          Map<String, String> query = query(exchange);
          if (query.get("pageSize") != null) {
            return json(
                200,
                CatalogHandlers.listTables(
                    served.catalog, namespace, query.get("pageToken"), query.get("pageSize")));
          }
          return json(200, CatalogHandlers.listTables(served.catalog, namespace));
        case "POST":
          CreateTableRequest request = read(exchange, CreateTableRequest.class);
          LoadTableResponse created =
              request.stageCreate()
                  ? CatalogHandlers.stageTableCreate(served.catalog, namespace, request)
                  : CatalogHandlers.createTable(served.catalog, namespace, request);
          return json(200, created);
        default:
          return notAllowed(method, parts);
      }
    }
    TableIdentifier ident = TableIdentifier.of(namespace, RESTUtil.decodeString(parts.get(3)));
    if (n == 4) {
      switch (method) {
        case "GET":
          return loadTable(exchange, served, ident);
        case "HEAD":
          CatalogHandlers.tableExists(served.catalog, ident);
          return new Reply(204, null);
        case "POST":
          UpdateTableRequest request = read(exchange, UpdateTableRequest.class);
          return json(200, CatalogHandlers.updateTable(served.catalog, ident, request));
        case "DELETE":
          if (Boolean.parseBoolean(query(exchange).getOrDefault("purgeRequested", "false"))) {
            CatalogHandlers.purgeTable(served.catalog, ident);
          } else {
            CatalogHandlers.dropTable(served.catalog, ident);
          }
          return new Reply(204, null);
        default:
          return notAllowed(method, parts);
      }
    }
    if (n == 5 && parts.get(4).equals("metrics") && method.equals("POST")) {
      exchange.getRequestBody().readAllBytes(); // accepted and dropped, as metrics reports may be
      return new Reply(204, null);
    }
    if (n == 5 && parts.get(4).equals("credentials") && method.equals("GET")) {
      if (!served.spec.vends()) {
        throw new Unsupported("Catalog " + served.spec.name + " does not vend storage credentials");
      }
      LoadTableResponse table = CatalogHandlers.loadTable(served.catalog, ident);
      ObjectNode answer = mapper.createObjectNode();
      answer.set("storage-credentials", credentials(served.spec, table.tableMetadata().location()));
      return json(200, answer);
    }
    return notAllowed(method, parts);
  }

  /** A loaded table, with the catalog's storage credentials when the client asked for vended credentials. */
  private Reply loadTable(HttpExchange exchange, Catalogs.Served served, TableIdentifier ident)
      throws JsonProcessingException {
    LoadTableResponse table = CatalogHandlers.loadTable(served.catalog, ident);
    String delegation = exchange.getRequestHeaders().getFirst(DELEGATION_HEADER);
    if (!served.spec.vends() || delegation == null || !delegation.contains("vended-credentials")) {
      return json(200, table);
    }
    ObjectNode answer = (ObjectNode) mapper.valueToTree(table);
    answer.set("storage-credentials", credentials(served.spec, table.tableMetadata().location()));
    return json(200, answer);
  }

  private ArrayNode credentials(CatalogSpec spec, String location) {
    ArrayNode list = mapper.createArrayNode();
    ObjectNode credential = list.addObject();
    credential.put("prefix", location);
    ObjectNode config = credential.putObject("config");
    spec.vendedCredentials.forEach(config::put);
    return list;
  }

  private Reply views(
      HttpExchange exchange, String method, Catalogs.Served served, Namespace namespace, List<String> parts)
      throws IOException {
    int n = parts.size();
    if (n == 3) {
      switch (method) {
        case "GET":
          return json(200, CatalogHandlers.listViews(served.catalog, namespace));
        case "POST":
          return json(
              200,
              CatalogHandlers.createView(served.catalog, namespace, read(exchange, CreateViewRequest.class)));
        default:
          return notAllowed(method, parts);
      }
    }
    TableIdentifier ident = TableIdentifier.of(namespace, RESTUtil.decodeString(parts.get(3)));
    if (n == 4) {
      switch (method) {
        case "GET":
          return json(200, CatalogHandlers.loadView(served.catalog, ident));
        case "HEAD":
          CatalogHandlers.viewExists(served.catalog, ident);
          return new Reply(204, null);
        case "POST":
          return json(
              200, CatalogHandlers.updateView(served.catalog, ident, read(exchange, UpdateTableRequest.class)));
        case "DELETE":
          CatalogHandlers.dropView(served.catalog, ident);
          return new Reply(204, null);
        default:
          return notAllowed(method, parts);
      }
    }
    return notAllowed(method, parts);
  }

  private static void noViews(boolean unity) {
    if (unity) {
      throw new Unsupported("Unity Catalog's Iceberg REST endpoint does not serve views");
    }
  }

  private static String readOnlyMessage(CatalogSpec spec, List<String> parts) {
    if (spec.flavor == CatalogSpec.Flavor.UNITY) {
      if (parts.size() >= 4 && parts.get(0).equals("namespaces") && parts.get(2).equals("tables")) {
        String table =
            spec.name
                + "."
                + RESTUtil.decodeNamespace(parts.get(1))
                + "."
                + RESTUtil.decodeString(parts.get(3));
        return "Table "
            + table
            + " is a foreign table: Unity Catalog serves it read-only; write to it in the catalog it is"
            + " federated from";
      }
      return "Catalog "
          + spec.name
          + " is a foreign catalog: Unity Catalog serves it read-only; change it in the catalog it is"
          + " federated from";
    }
    return "Catalog " + spec.name + " is read-only: it accepts no writes";
  }

  private static Reply notAllowed(String method, List<String> parts) {
    throw new Unsupported("Method " + method + " is not supported on /v1/{prefix}/" + String.join("/", parts));
  }

  // ------------------------------------------------------------------------------------ plumbing

  private <T> T read(HttpExchange exchange, Class<T> type) throws IOException {
    byte[] body = exchange.getRequestBody().readAllBytes();
    if (body.length == 0) {
      throw new BadRequestException("Request body is empty; expected a %s", type.getSimpleName());
    }
    return mapper.readValue(body, type);
  }

  private JsonNode readTree(HttpExchange exchange) throws IOException {
    byte[] body = exchange.getRequestBody().readAllBytes();
    JsonNode node = body.length == 0 ? null : mapper.readTree(body);
    if (node == null || !node.isObject()) {
      throw new BadRequestException("Request body must be a JSON object");
    }
    return node;
  }

  private static String text(JsonNode body, String field) {
    JsonNode value = body.get(field);
    return value == null || value.isNull() ? null : value.asText();
  }

  private Reply json(int status, Object value) throws JsonProcessingException {
    return new Reply(status, mapper.writeValueAsBytes(value));
  }

  /** The path's segments, still percent-encoded (a table name may hold an encoded slash). */
  private static List<String> segments(String path) {
    List<String> parts = new ArrayList<>(Arrays.asList(path.split("/")));
    parts.removeIf(String::isEmpty);
    return parts;
  }

  private static Map<String, String> query(HttpExchange exchange) {
    Map<String, String> values = new LinkedHashMap<>();
    String raw = exchange.getRequestURI().getRawQuery();
    if (raw == null || raw.isEmpty()) {
      return values;
    }
    for (String pair : raw.split("&")) {
      int eq = pair.indexOf('=');
      String key = eq < 0 ? pair : pair.substring(0, eq);
      String value = eq < 0 ? "" : pair.substring(eq + 1);
      // parent namespaces keep their %1F separators until the namespace is decoded level by level
      values.put(
          URLDecoder.decode(key, StandardCharsets.UTF_8),
          key.equals("parent") ? value : URLDecoder.decode(value, StandardCharsets.UTF_8));
    }
    return values;
  }

  private static Namespace decodeNamespaceParam(String raw) {
    return RESTUtil.decodeNamespace(raw);
  }

  private Reply error(Throwable failure) {
    int status = status(failure);
    String message = failure.getMessage() == null ? failure.getClass().getSimpleName() : failure.getMessage();
    String type = failure instanceof Unsupported ? "UnsupportedOperationException" : failure.getClass().getSimpleName();
    if (status == 500) {
      failure.printStackTrace(System.err);
    }
    ErrorResponse response =
        ErrorResponse.builder().responseCode(status).withType(type).withMessage(message).build();
    try {
      return new Reply(status, mapper.writeValueAsBytes(response));
    } catch (JsonProcessingException e) {
      return new Reply(500, null);
    }
  }

  private static int status(Throwable failure) {
    if (failure instanceof NoSuchNamespaceException
        || failure instanceof NoSuchTableException
        || failure instanceof NoSuchViewException
        || failure instanceof NotFoundException) {
      return 404;
    }
    if (failure instanceof AlreadyExistsException
        || failure instanceof CommitFailedException
        || failure instanceof NamespaceNotEmptyException) {
      return 409;
    }
    if (failure instanceof NotAuthorizedException) {
      return 401;
    }
    if (failure instanceof ForbiddenException) {
      return 403;
    }
    if (failure instanceof Unsupported || failure instanceof UnsupportedOperationException) {
      return 406;
    }
    if (failure instanceof BadRequestException
        || failure instanceof ValidationException
        || failure instanceof IllegalArgumentException
        || failure instanceof JsonProcessingException) {
      return 400;
    }
    return 500;
  }

  private static void send(HttpExchange exchange, Reply reply) throws IOException {
    boolean head = exchange.getRequestMethod().equalsIgnoreCase("HEAD");
    if (reply.body == null || head) {
      exchange.sendResponseHeaders(reply.status, -1);
      return;
    }
    exchange.getResponseHeaders().set("Content-Type", "application/json");
    exchange.sendResponseHeaders(reply.status, reply.body.length);
    try (OutputStream out = exchange.getResponseBody()) {
      out.write(reply.body);
    }
  }
}
