import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// A response produced synchronously by a route handler.
public struct HTTPResponse: Sendable {
  public var status: HTTPResponseStatus
  public var headers: [(String, String)]
  public var body: String
  /// Close the connection after this response even if the client asked for keep-alive.
  public var closeConnection: Bool

  public init(
    status: HTTPResponseStatus, headers: [(String, String)] = [], body: String = "",
    closeConnection: Bool = false
  ) {
    self.status = status
    self.headers = headers
    self.body = body
    self.closeConnection = closeConnection
  }

  /// A JSON body with kube-proxy's headers (`Content-Type: application/json`,
  /// `X-Content-Type-Options: nosniff`).
  static func json(_ status: HTTPResponseStatus, _ body: String) -> HTTPResponse {
    HTTPResponse(
      status: status,
      headers: [("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff")],
      body: body)
  }

  static func text(_ status: HTTPResponseStatus, _ body: String) -> HTTPResponse {
    HTTPResponse(
      status: status,
      headers: [
        ("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff"),
      ],
      body: body)
  }

  static let notFound = text(.notFound, "404 page not found\n")
}

/// Answers a request from its head (bodies are read and ignored).
public typealias HTTPRequestHandler = @Sendable (HTTPRequestHead) -> HTTPResponse

/// A `host:port` to listen on, in kube-proxy's flag syntax: `0.0.0.0:10256`, `[::]:10256`,
/// `:10256` (all IPv4 addresses), or a bare address that takes the default port.
public struct BindAddress: Sendable, Equatable, CustomStringConvertible {
  public var host: String
  public var port: Int

  public init(host: String, port: Int) {
    self.host = host
    self.port = port
  }

  /// Parses `text`; nil when it is malformed. Port 0 picks a free port.
  public init?(parsing text: String, defaultPort: Int) {
    var host: Substring
    var portText: Substring?
    if text.hasPrefix("[") {
      guard let close = text.firstIndex(of: "]") else { return nil }
      host = text[text.index(after: text.startIndex)..<close]
      let rest = text[text.index(after: close)...]
      if !rest.isEmpty {
        guard rest.hasPrefix(":") else { return nil }
        portText = rest.dropFirst()
      }
    } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
      host = text[..<colon]
      portText = text[text.index(after: colon)...]
    } else {
      host = Substring(text)
    }
    if host.isEmpty { host = "0.0.0.0" }
    var port = defaultPort
    if let portText {
      guard let p = Int(portText), (0...65535).contains(p) else { return nil }
      port = p
    }
    self.host = String(host)
    self.port = port
  }

  public var description: String {
    host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
  }
}

/// A minimal HTTP/1.1 server on SwiftNIO whose routes answer synchronously.
public final class HTTPServer: Sendable {
  private let channel: any Channel

  private init(channel: any Channel) {
    self.channel = channel
  }

  /// Binds `address` and starts serving `handler`.
  public static func start(
    at address: BindAddress, group: any EventLoopGroup, handler: @escaping HTTPRequestHandler
  ) async throws -> HTTPServer {
    let channel = try await ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: 64)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
          try channel.pipeline.syncOperations.addHandler(RouteHandler(handler: handler))
        }
      }
      .bind(host: address.host, port: address.port)
      .get()
    return HTTPServer(channel: channel)
  }

  /// The bound port.
  public var port: Int { channel.localAddress?.port ?? 0 }

  /// The bound address.
  public var localAddress: SocketAddress? { channel.localAddress }

  /// Stops accepting connections.
  public func close() async {
    try? await channel.close()
  }
}

/// Serves one connection: collects a request and writes the handler's response.
final class RouteHandler: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart

  private let handler: HTTPRequestHandler
  private var head: HTTPRequestHead?

  init(handler: @escaping HTTPRequestHandler) {
    self.handler = handler
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let h):
      head = h
    case .body:
      break
    case .end:
      guard let request = head else { return }
      head = nil
      let response = handler(request)
      let keepAlive = request.isKeepAlive && !response.closeConnection
      var headers = HTTPHeaders(response.headers)
      let body = context.channel.allocator.buffer(string: response.body)
      headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
      if !keepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
      context.write(
        wrapOutboundOut(
          .head(
            HTTPResponseHead(version: request.version, status: response.status, headers: headers))),
        promise: nil)
      if request.method != .HEAD {
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
      }
      let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
      if !keepAlive {
        done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
      }
    }
  }
}

/// Runs an ``HTTPServer`` as a ServiceLifecycle service: binds when run, closes on graceful
/// shutdown or cancellation.
public final class HTTPServerService: Service, CustomStringConvertible {
  /// For logs, e.g. "healthz".
  public let name: String
  public let address: BindAddress
  private let group: any EventLoopGroup
  private let handler: HTTPRequestHandler
  private let logger: Logger
  private let bound = OnceValue<Result<SocketAddress, any Error>>()

  public init(
    name: String, address: BindAddress, group: any EventLoopGroup, logger: Logger,
    handler: @escaping HTTPRequestHandler
  ) {
    self.name = name
    self.address = address
    self.group = group
    self.logger = logger
    self.handler = handler
  }

  public var description: String { "HTTPServerService(\(name) on \(address))" }

  /// The address the server listens on, once bound (waits for ``run()`` to bind; throws the
  /// bind error).
  public func boundAddress() async throws -> SocketAddress {
    try await bound.wait().get()
  }

  public func run() async throws {
    let server: HTTPServer
    do {
      server = try await HTTPServer.start(at: address, group: group, handler: handler)
    } catch {
      logger.error(
        "cannot listen",
        metadata: ["server": "\(name)", "address": "\(address)", "error": "\(error)"])
      bound.set(.failure(error))
      throw error
    }
    if let local = server.localAddress { bound.set(.success(local)) }
    logger.info(
      "listening",
      metadata: ["server": "\(name)", "address": "\(server.localAddress.map { "\($0)" } ?? "?")"])
    try? await gracefulShutdown()
    await server.close()
    logger.debug("stopped", metadata: ["server": "\(name)"])
  }
}

/// A value set once and awaited by any number of tasks.
final class OnceValue<T: Sendable>: Sendable {
  private struct State {
    var value: T?
    var waiters: [CheckedContinuation<T, Never>] = []
  }

  private let state = Mutex(State())

  func set(_ value: T) {
    let waiters = state.withLock { s -> [CheckedContinuation<T, Never>] in
      guard s.value == nil else { return [] }
      s.value = value
      defer { s.waiters = [] }
      return s.waiters
    }
    for w in waiters { w.resume(returning: value) }
  }

  var value: T? { state.withLock { $0.value } }

  func wait() async -> T {
    await withCheckedContinuation { c in
      let v = state.withLock { s -> T? in
        if let v = s.value { return v }
        s.waiters.append(c)
        return nil
      }
      if let v { c.resume(returning: v) }
    }
  }
}
