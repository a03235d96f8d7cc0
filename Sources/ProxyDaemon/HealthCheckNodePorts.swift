import KubeModel
import Logging
import NIOCore
import ProxyCore
import ServiceLifecycle
import Synchronization

/// One Service that needs a health-check node port: type LoadBalancer, externalTrafficPolicy
/// Local, with `spec.healthCheckNodePort`.
public struct HealthCheckService: Sendable, Hashable {
  public var namespace: String
  public var name: String
  public var port: Int
  /// Distinct addresses of ready endpoints on this node, over all ports and families (as
  /// kube-proxy counts them).
  public var localEndpoints: Int

  public init(namespace: String, name: String, port: Int, localEndpoints: Int) {
    self.namespace = namespace
    self.name = name
    self.port = port
    self.localEndpoints = localEndpoints
  }

  /// The Services of `state` that need a health-check node port, with their local endpoint
  /// counts from `resolved`, sorted by port.
  public static func services(state: ClusterState, resolved: ResolvedCluster)
    -> [HealthCheckService]
  {
    var local: [String: Set<String>] = [:]
    for sp in resolved.servicePorts {
      for ep in sp.localEndpoints where ep.ready && ep.isLocal {
        local[sp.serviceKey, default: []].insert(ep.address.description)
      }
    }
    var out: [HealthCheckService] = []
    var usedPorts = Set<Int>()
    for svc in state.services {
      guard svc.spec.type == "LoadBalancer", svc.spec.externalTrafficPolicy == "Local",
        let port = svc.spec.healthCheckNodePort, (1...65535).contains(port),
        Resolver.skipReason(svc) == nil
      else { continue }
      // The API server allocates distinct ports; keep the first if input says otherwise.
      guard usedPorts.insert(port).inserted else { continue }
      out.append(
        HealthCheckService(
          namespace: svc.metadata.namespace ?? "default", name: svc.metadata.name ?? "",
          port: port, localEndpoints: local[svc.key]?.count ?? 0))
    }
    return out.sorted { $0.port < $1.port }
  }

  /// kube-proxy's health-check node port response: 200 when there are local endpoints and the
  /// proxy is healthy, 503 otherwise.
  func response(proxyHealthy: Bool) -> HTTPResponse {
    let body = """
      {
      \t"service": {
      \t\t"namespace": \(jsonString(namespace)),
      \t\t"name": \(jsonString(name))
      \t},
      \t"localEndpoints": \(localEndpoints),
      \t"serviceProxyHealthy": \(proxyHealthy)
      }
      """
    return .json(localEndpoints > 0 && proxyHealthy ? .ok : .serviceUnavailable, body)
  }
}

/// Opens, updates and closes the health-check node port listeners after each sync.
public actor HealthCheckNodePorts {
  /// Listening host (all IPv4 addresses by default).
  public nonisolated let bindHost: String
  nonisolated let health: ProxyHealth
  nonisolated let group: any EventLoopGroup
  nonisolated let logger: Logger

  /// A listener and the service it currently answers for (nil once closed).
  private final class Listener: Sendable {
    let current: Mutex<HealthCheckService?>
    var server: HTTPServer? { serverBox.withLock { $0 } }
    let serverBox = Mutex<HTTPServer?>(nil)

    init(_ service: HealthCheckService) {
      current = Mutex(service)
    }
  }

  private var listeners: [Int: Listener] = [:]
  private var failedPorts: Set<Int> = []

  public init(
    bindHost: String = "0.0.0.0", health: ProxyHealth, group: any EventLoopGroup,
    logger: Logger = Logger(label: "nftproxy.healthcheck")
  ) {
    self.bindHost = bindHost
    self.health = health
    self.group = group
    self.logger = logger
  }

  /// The ports with an open listener, sorted.
  public var openPorts: [Int] { listeners.keys.sorted() }

  /// The services currently served, by port.
  public var served: [Int: HealthCheckService] {
    listeners.compactMapValues { $0.current.withLock { $0 } }
  }

  /// Makes the listeners match `services`: opens new ports, updates counts, closes ports no
  /// longer wanted. A port that cannot be bound is logged and tried again next time.
  public func update(_ services: [HealthCheckService]) async {
    let wanted = Dictionary(services.map { ($0.port, $0) }, uniquingKeysWith: { a, _ in a })
    for (port, listener) in listeners where wanted[port] == nil {
      listeners[port] = nil
      await close(listener)
      logger.info("closed health-check node port", metadata: ["port": "\(port)"])
    }
    for (port, service) in wanted.sorted(by: { $0.key < $1.key }) {
      if let listener = listeners[port] {
        listener.current.withLock { $0 = service }
        continue
      }
      let listener = Listener(service)
      let health = self.health
      do {
        let server = try await HTTPServer.start(
          at: BindAddress(host: bindHost, port: port), group: group
        ) { _ in
          guard let svc = listener.current.withLock({ $0 }) else {
            return HTTPResponse(status: .serviceUnavailable, closeConnection: true)
          }
          return svc.response(proxyHealthy: health.isHealthy)
        }
        listener.serverBox.withLock { $0 = server }
        listeners[port] = listener
        failedPorts.remove(port)
        logger.info(
          "opened health-check node port",
          metadata: ["port": "\(port)", "service": "\(service.namespace)/\(service.name)"])
      } catch {
        if failedPorts.insert(port).inserted {
          logger.error(
            "cannot open health-check node port",
            metadata: [
              "port": "\(port)", "service": "\(service.namespace)/\(service.name)",
              "error": "\(error)",
            ])
        }
      }
    }
    failedPorts.formIntersection(wanted.keys)
  }

  /// Closes every listener.
  public func closeAll() async {
    let all = listeners
    listeners = [:]
    for l in all.values { await close(l) }
  }

  private func close(_ listener: Listener) async {
    listener.current.withLock { $0 = nil }
    await listener.server?.close()
  }

  /// Follows `loop`'s successful syncs until graceful shutdown (or cancellation), then closes
  /// every listener.
  public func follow(_ loop: SyncLoop) async {
    for await snapshot in await loop.snapshots().cancelOnGracefulShutdown() {
      await update(HealthCheckService.services(state: snapshot.state, resolved: snapshot.resolved))
    }
    await closeAll()
  }
}
