import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// A small Kubernetes API server for tests, on 127.0.0.1 and an ephemeral port.
///
/// It keeps objects per collection path with a global resourceVersion counter (like etcd),
/// answers paginated lists (`limit`/`continue`, consistent snapshots), streams watches with
/// chunked transfer encoding (history replay from a resourceVersion, then live events), sends
/// bookmarks on request, answers 410 for a compacted resourceVersion (as an ERROR event or as the
/// HTTP status), checks a bearer token, can cut watch connections, hold list responses back, and
/// records every request.
public final class FakeAPIServer: @unchecked Sendable {
  /// How an expired resourceVersion on a watch is reported.
  public enum GoneMode: Sendable, CustomStringConvertible {
    /// 200, then `{"type":"ERROR","object":{Status 410}}` (what kube-apiserver does).
    case errorEvent
    /// HTTP 410 with a Status body.
    case httpStatus
    public var description: String { self == .errorEvent ? "ERROR event" : "HTTP status" }
  }

  public struct Request: Sendable, CustomStringConvertible {
    public var path: String
    public var query: [String: String]
    public var authorization: String?
    public var isWatch: Bool { query["watch"] == "1" || query["watch"] == "true" }
    public var description: String { "\(path) \(query.sorted { $0.key < $1.key })" }
  }

  private struct Stored {
    var key: String
    var name: String
    var labels: [String: String]
    var json: [UInt8]
  }

  private struct HistoryEntry {
    var rv: Int
    var path: String
    var type: String
    var object: Stored
  }

  private struct Watcher {
    var id: Int
    var path: String
    var labelSelector: String?
    var fieldSelector: String?
    var channel: any Channel
  }

  private let lock = NSLock()
  private var rv = 100
  private var collections: [String: [String: Stored]] = [:]
  private var history: [HistoryEntry] = []
  private var compactedBelow = 0
  private var watchers: [Watcher] = []
  private var nextWatcherID = 0
  private var listSnapshots: [String: (rv: Int, items: [Stored])] = [:]
  private var heldPaths: Set<String> = []
  private var heldRequests: [(Request, any Channel)] = []
  private var requests: [Request] = []
  private var _token: String?
  private var _goneMode: GoneMode = .errorEvent
  private var _splitLiveEvents: Int?
  private var connections: [ObjectIdentifier: any Channel] = [:]
  private var stopped = false

  private var serverChannel: (any Channel)?
  public private(set) var port = 0
  public let tls: Bool

  /// - Parameters:
  ///   - token: the bearer token required on every request (nil: no check).
  ///   - tlsConfiguration: serve HTTPS with this configuration.
  public init(token: String? = "test-token", tlsConfiguration: TLSConfiguration? = nil) async throws
  {
    _token = token
    tls = tlsConfiguration != nil
    let sslContext = try tlsConfiguration.map { try NIOSSLContext(configuration: $0) }
    let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { [self] channel in
        channel.eventLoop.makeCompletedFuture {
          guard self.accept(channel) else { throw FakeServerError.stopped }
          if let sslContext {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
          }
          try channel.pipeline.syncOperations.configureHTTPServerPipeline()
          try channel.pipeline.syncOperations.addHandler(RequestHandler(server: self))
        }
      }
    let channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
    serverChannel = channel
    port = channel.localAddress?.port ?? 0
  }

  public var url: String { "\(tls ? "https" : "http")://127.0.0.1:\(port)" }

  /// Stops listening and closes every connection (idle keep-alive ones too), as an API server
  /// that goes away does. Idempotent.
  public func shutdown() async {
    let open = lock.withLock {
      stopped = true
      var all = Array(connections.values)
      for c in watchers.map(\.channel) + heldRequests.map(\.1)
      where connections[ObjectIdentifier(c)] == nil {
        all.append(c)
      }
      watchers = []
      heldRequests = []
      connections = [:]
      return all
    }
    try? await serverChannel?.close()
    for c in open { try? await c.close() }
  }

  /// Registers an accepted connection; false once stopped.
  private func accept(_ channel: any Channel) -> Bool {
    lock.withLock {
      if stopped { return false }
      connections[ObjectIdentifier(channel)] = channel
      return true
    }
  }

  /// Whether ``shutdown()`` has been called.
  public var isStopped: Bool { lock.withLock { stopped } }

  /// Number of open client connections.
  public var openConnections: Int { lock.withLock { connections.count } }

  // MARK: - configuration

  public var token: String? {
    get { lock.withLock { _token } }
    set { lock.withLock { _token = newValue } }
  }

  public var goneMode: GoneMode {
    get { lock.withLock { _goneMode } }
    set { lock.withLock { _goneMode = newValue } }
  }

  /// Write each live watch event in pieces of this many bytes (each its own HTTP chunk).
  public var splitLiveEvents: Int? {
    get { lock.withLock { _splitLiveEvents } }
    set { lock.withLock { _splitLiveEvents = newValue } }
  }

  public var currentResourceVersion: Int { lock.withLock { rv } }

  public var recordedRequests: [Request] { lock.withLock { requests } }

  public func requests(path: String, watch: Bool) -> [Request] {
    recordedRequests.filter { $0.path == path && $0.isWatch == watch }
  }

  /// Number of open watch streams on `path`.
  public func openWatches(path: String) -> Int {
    lock.withLock { watchers.filter { $0.path == path }.count }
  }

  // MARK: - objects

  /// Creates or replaces an object and notifies watchers (ADDED or MODIFIED). Returns its
  /// resourceVersion.
  @discardableResult
  public func put(_ object: some Encodable, path: String, notify: Bool = true) throws -> Int {
    let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(object))
    guard let dict = json as? [String: Any] else { throw FakeServerError.notAnObject }
    return try putRaw(dict, path: path, notify: notify)
  }

  /// Like `put` with a raw JSON object (to send objects that do not decode or validate).
  @discardableResult
  public func putRaw(_ object: [String: Any], path: String, notify: Bool = true) throws -> Int {
    var object = object
    var meta = object["metadata"] as? [String: Any] ?? [:]
    let name = meta["name"] as? String ?? ""
    let namespace = meta["namespace"] as? String
    let labels = meta["labels"] as? [String: String] ?? [:]
    let key = namespace.map { "\($0)/\(name)" } ?? name
    return try lock.withLock {
      rv += 1
      meta["resourceVersion"] = String(rv)
      object["metadata"] = meta
      let json = try [UInt8](JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
      let stored = Stored(key: key, name: name, labels: labels, json: json)
      let existed = collections[path]?[key] != nil
      collections[path, default: [:]][key] = stored
      if notify {
        record(
          HistoryEntry(rv: rv, path: path, type: existed ? "MODIFIED" : "ADDED", object: stored))
      }
      return rv
    }
  }

  /// Deletes `namespace/name` (or `name`) and notifies watchers.
  @discardableResult
  public func delete(path: String, key: String, notify: Bool = true) -> Int? {
    lock.withLock {
      guard var stored = collections[path]?.removeValue(forKey: key) else { return nil }
      rv += 1
      if var dict = (try? JSONSerialization.jsonObject(with: Data(stored.json))) as? [String: Any],
        var meta = dict["metadata"] as? [String: Any]
      {
        meta["resourceVersion"] = String(rv)
        dict["metadata"] = meta
        if let data = try? JSONSerialization.data(withJSONObject: dict, options: [.sortedKeys]) {
          stored.json = [UInt8](data)
        }
      }
      if notify { record(HistoryEntry(rv: rv, path: path, type: "DELETED", object: stored)) }
      return rv
    }
  }

  /// Advances the resourceVersion (as changes to other collections would) and sends a BOOKMARK
  /// with it to the watchers of `path`. Returns the bookmark's resourceVersion.
  @discardableResult
  public func sendBookmark(path: String, advanceBy: Int = 5) -> Int {
    lock.withLock {
      rv += advanceBy
      let kind =
        path.hasSuffix("endpointslices")
        ? "EndpointSlice" : path.hasSuffix("nodes") ? "Node" : "Service"
      let line = Array(
        "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"\(kind)\",\"metadata\":{\"resourceVersion\":\"\(rv)\"}}}\n"
          .utf8)
      for w in watchers where w.path == path {
        write(w.channel, [.body(.byteBuffer(ByteBuffer(bytes: line)))])
      }
      return rv
    }
  }

  /// Forgets history below the current resourceVersion: a watch from an older one gets 410.
  public func compact() {
    lock.withLock {
      compactedBelow = rv
      history.removeAll { $0.rv < compactedBelow }
    }
  }

  /// Cuts every watch connection on `path` without ending the chunked body.
  public func dropWatches(path: String) {
    let dropped = lock.withLock {
      let d = watchers.filter { $0.path == path }
      watchers.removeAll { $0.path == path }
      return d
    }
    for w in dropped {
      let channel = w.channel
      channel.eventLoop.execute { channel.close(promise: nil) }
    }
  }

  /// Ends every watch on `path` cleanly (as a server-side timeout does).
  public func endWatches(path: String) {
    lock.withLock {
      for w in watchers where w.path == path { write(w.channel, [.end(nil)]) }
      watchers.removeAll { $0.path == path }
    }
  }

  /// Holds list responses for `path` until `releaseLists(path:)`.
  public func holdLists(path: String) {
    _ = lock.withLock { heldPaths.insert(path) }
  }

  public func releaseLists(path: String) {
    let held = lock.withLock {
      heldPaths.remove(path)
      let h = heldRequests.filter { $0.0.path == path }
      heldRequests.removeAll { $0.0.path == path }
      return h
    }
    for (request, channel) in held { respond(request, channel: channel) }
  }

  // MARK: - request handling (called on the connection's event loop)

  fileprivate func handle(_ head: HTTPRequestHead, channel: any Channel) {
    let components = URLComponents(string: head.uri)
    var query: [String: String] = [:]
    for item in components?.queryItems ?? [] { query[item.name] = item.value ?? "" }
    let request = Request(
      path: components?.path ?? head.uri, query: query,
      authorization: head.headers.first(name: "Authorization"))
    let hold = lock.withLock {
      requests.append(request)
      if heldPaths.contains(request.path) && !request.isWatch {
        heldRequests.append((request, channel))
        return true
      }
      return false
    }
    if !hold { respond(request, channel: channel) }
  }

  fileprivate func connectionClosed(_ channel: any Channel) {
    lock.withLock {
      watchers.removeAll { $0.channel === channel }
      connections[ObjectIdentifier(channel)] = nil
    }
  }

  private func respond(_ request: Request, channel: any Channel) {
    lock.withLock {
      if let token = _token, request.authorization != "Bearer \(token)" {
        sendStatus(channel, code: 401, reason: "Unauthorized", message: "Unauthorized")
        return
      }
      guard collections[request.path] != nil || Self.knownPaths.contains(request.path) else {
        sendStatus(
          channel, code: 404, reason: "NotFound",
          message: "the server could not find the requested resource")
        return
      }
      if request.isWatch {
        startWatch(request, channel: channel)
      } else {
        list(request, channel: channel)
      }
    }
  }

  public static let knownPaths: Set<String> = [
    "/api/v1/services", "/apis/discovery.k8s.io/v1/endpointslices", "/api/v1/nodes",
  ]

  /// Must hold the lock.
  private func list(_ request: Request, channel: any Channel) {
    let snapshot: (rv: Int, items: [Stored])
    var offset = 0
    if let token = request.query["continue"], !token.isEmpty {
      let parts = token.split(separator: ":")
      guard parts.count == 2, let snap = listSnapshots[String(parts[0])], let off = Int(parts[1])
      else {
        sendStatus(channel, code: 410, reason: "Expired", message: "continue token expired")
        return
      }
      snapshot = snap
      offset = off
    } else {
      let items = (collections[request.path] ?? [:]).values
        .filter {
          matches(
            $0, labelSelector: request.query["labelSelector"],
            fieldSelector: request.query["fieldSelector"])
        }
        .sorted { $0.key < $1.key }
      snapshot = (rv, items)
    }
    let limit = Int(request.query["limit"] ?? "") ?? 0
    let end = limit > 0 ? min(offset + limit, snapshot.items.count) : snapshot.items.count
    var continueToken = ""
    if end < snapshot.items.count {
      let id = UUID().uuidString
      listSnapshots[id] = snapshot
      continueToken = "\(id):\(end)"
    }
    var body = Array(
      "{\"kind\":\"List\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"\(snapshot.rv)\""
        .utf8)
    if !continueToken.isEmpty { body += Array(",\"continue\":\"\(continueToken)\"".utf8) }
    body += Array("},\"items\":[".utf8)
    for (i, item) in snapshot.items[offset..<end].enumerated() {
      if i > 0 { body.append(UInt8(ascii: ",")) }
      body += item.json
    }
    body += Array("]}".utf8)
    sendJSON(channel, status: .ok, body: body)
  }

  /// Must hold the lock.
  private func startWatch(_ request: Request, channel: any Channel) {
    guard let from = Int(request.query["resourceVersion"] ?? "") else {
      sendStatus(channel, code: 400, reason: "BadRequest", message: "resourceVersion required")
      return
    }
    if from < compactedBelow {
      let message = "too old resource version: \(from) (\(compactedBelow))"
      if _goneMode == .httpStatus {
        sendStatus(channel, code: 410, reason: "Expired", message: message)
      } else {
        var head = HTTPResponseHead(version: .http1_1, status: .ok)
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Transfer-Encoding", value: "chunked")
        let event = Array(
          "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\"message\":\"\(message)\",\"reason\":\"Expired\",\"code\":410}}\n"
            .utf8)
        write(channel, [.head(head), .body(.byteBuffer(ByteBuffer(bytes: event))), .end(nil)])
      }
      return
    }
    var head = HTTPResponseHead(version: .http1_1, status: .ok)
    head.headers.add(name: "Content-Type", value: "application/json")
    head.headers.add(name: "Transfer-Encoding", value: "chunked")
    let watcher = Watcher(
      id: nextWatcherID, path: request.path, labelSelector: request.query["labelSelector"],
      fieldSelector: request.query["fieldSelector"], channel: channel)
    nextWatcherID += 1
    // Replay the history after `from` in one chunk (several events per chunk).
    var replay: [UInt8] = []
    for entry in history where entry.path == request.path && entry.rv > from {
      if matches(
        entry.object, labelSelector: watcher.labelSelector, fieldSelector: watcher.fieldSelector)
      {
        replay += eventLine(entry)
      }
    }
    var parts: [HTTPServerResponsePart] = [.head(head)]
    if !replay.isEmpty { parts.append(.body(.byteBuffer(ByteBuffer(bytes: replay)))) }
    write(channel, parts)
    watchers.append(watcher)
  }

  /// Must hold the lock.
  private func record(_ entry: HistoryEntry) {
    history.append(entry)
    let line = eventLine(entry)
    for w in watchers where w.path == entry.path {
      guard matches(entry.object, labelSelector: w.labelSelector, fieldSelector: w.fieldSelector)
      else {
        continue
      }
      if let n = _splitLiveEvents, n > 0 {
        var pieces: [HTTPServerResponsePart] = []
        var i = 0
        while i < line.count {
          pieces.append(.body(.byteBuffer(ByteBuffer(bytes: line[i..<min(i + n, line.count)]))))
          i += n
        }
        write(w.channel, pieces)
      } else {
        write(w.channel, [.body(.byteBuffer(ByteBuffer(bytes: line)))])
      }
    }
  }

  private func eventLine(_ entry: HistoryEntry) -> [UInt8] {
    Array("{\"type\":\"\(entry.type)\",\"object\":".utf8) + entry.object.json + Array("}\n".utf8)
  }

  private func matches(_ o: Stored, labelSelector: String?, fieldSelector: String?) -> Bool {
    if let fieldSelector, !fieldSelector.isEmpty {
      for term in fieldSelector.split(separator: ",") {
        let kv = term.split(separator: "=", maxSplits: 1).map(String.init)
        if kv.count == 2, kv[0] == "metadata.name", o.name != kv[1] { return false }
      }
    }
    if let labelSelector, !labelSelector.isEmpty {
      for term in labelSelector.split(separator: ",").map(String.init) {
        if term.hasPrefix("!") {
          if o.labels[String(term.dropFirst())] != nil { return false }
        } else if let r = term.range(of: "!=") {
          if o.labels[String(term[..<r.lowerBound])] == String(term[r.upperBound...]) {
            return false
          }
        } else if let r = term.range(of: "=") {
          if o.labels[String(term[..<r.lowerBound])] != String(term[r.upperBound...]) {
            return false
          }
        } else if o.labels[term] == nil {
          return false
        }
      }
    }
    return true
  }

  private func sendStatus(_ channel: any Channel, code: Int, reason: String, message: String) {
    let body = Array(
      "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"\(message)\",\"reason\":\"\(reason)\",\"code\":\(code)}"
        .utf8)
    sendJSON(channel, status: HTTPResponseStatus(statusCode: code), body: body)
  }

  private func sendJSON(_ channel: any Channel, status: HTTPResponseStatus, body: [UInt8]) {
    var head = HTTPResponseHead(version: .http1_1, status: status)
    head.headers.add(name: "Content-Type", value: "application/json")
    head.headers.add(name: "Content-Length", value: String(body.count))
    write(channel, [.head(head), .body(.byteBuffer(ByteBuffer(bytes: body))), .end(nil)])
  }

  /// Queues writes on the channel's event loop, so writes issued under the lock keep their order.
  private func write(_ channel: any Channel, _ parts: [HTTPServerResponsePart]) {
    channel.eventLoop.execute {
      for p in parts { channel.write(p, promise: nil) }
      channel.flush()
    }
  }
}

public enum FakeServerError: Error {
  case notAnObject
  /// A connection arrived after ``FakeAPIServer/shutdown()``.
  case stopped
}

private final class RequestHandler: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  let server: FakeAPIServer
  var head: HTTPRequestHead?

  init(server: FakeAPIServer) { self.server = server }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let h): head = h
    case .body: break
    case .end:
      if let head { server.handle(head, channel: context.channel) }
      head = nil
    }
  }

  func channelInactive(context: ChannelHandlerContext) {
    server.connectionClosed(context.channel)
    context.fireChannelInactive()
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) {
    context.close(promise: nil)
  }
}
