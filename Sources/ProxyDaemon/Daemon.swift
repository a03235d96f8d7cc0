import Logging
import NIOCore
import NIOPosix
import ProxyCore
import ServiceLifecycle

/// Settings of the daemon beyond the rules themselves.
public struct DaemonOptions: Sendable, Equatable {
  public var sync: SyncOptions
  /// `--healthz-bind-address` (default `0.0.0.0:10256`); empty disables `/healthz`.
  public var healthzBindAddress: String
  /// `--metrics-bind-address` (default `127.0.0.1:10249`); empty disables `/metrics`.
  public var metricsBindAddress: String
  /// Host the health-check node ports listen on.
  public var healthCheckBindHost: String

  public init(
    sync: SyncOptions = SyncOptions(), healthzBindAddress: String = "0.0.0.0:10256",
    metricsBindAddress: String = "127.0.0.1:10249", healthCheckBindHost: String = "0.0.0.0"
  ) {
    self.sync = sync
    self.healthzBindAddress = healthzBindAddress
    self.metricsBindAddress = metricsBindAddress
    self.healthCheckBindHost = healthCheckBindHost
  }

  public static let defaultHealthzPort = 10256
  public static let defaultMetricsPort = 10249
}

/// Errors when assembling the daemon.
public enum DaemonError: Error, Sendable, CustomStringConvertible {
  case invalidBindAddress(flag: String, value: String)

  public var description: String {
    switch self {
    case .invalidBindAddress(let flag, let value):
      return "invalid \(flag) \"\(value)\": expected host:port, [v6-host]:port, :port or host"
    }
  }
}

/// The node daemon, as ServiceLifecycle services: the state source, the sync loop, the
/// health-check node ports and the `/healthz` and `/metrics` servers.
///
/// ```swift
/// let daemon = try Daemon(config: config, options: options, source: source,
///                         applier: applier, logger: logger)
/// try await daemon.serviceGroup().run()   // until SIGTERM/SIGINT
/// ```
///
/// Shutting down stops syncing and closes the listeners; the programmed rules stay in place so
/// traffic keeps flowing while the daemon restarts. Removing them is `nftproxy cleanup`'s job.
public final class Daemon: Sendable {
  public let syncLoop: SyncLoop
  public let health: ProxyHealth
  public let metrics: ProxyMetrics
  public let healthCheckNodePorts: HealthCheckNodePorts
  /// `/healthz` and `/livez`; nil when disabled.
  public let healthzServer: HTTPServerService?
  /// `/metrics`; nil when disabled.
  public let metricsServer: HTTPServerService?
  /// Everything to run, in start order (ServiceGroup shuts down in reverse order).
  public let services: [any Service]
  let logger: Logger

  /// - Parameters:
  ///   - config: node and cluster settings for the rules.
  ///   - source: delivers cluster views (KubeWatch or the manifest reader, adapted).
  ///   - applier: programs the rules (the netlink backend, adapted).
  ///   - staleFlowCleaner: deletes stale UDP conntrack entries after syncs (ctnetlink, adapted);
  ///     none if nil.
  ///   - metrics: where the kube-proxy metrics go; pass your own to share its registry.
  ///   - clock: the monotonic clock of the sync loop and the health checks.
  /// - Throws: ``DaemonError`` for a malformed bind address.
  public init(
    config: ProxyConfig, options: DaemonOptions = DaemonOptions(), source: any StateSource,
    applier: any RuleApplier, staleFlowCleaner: (any StaleFlowCleaner)? = nil, logger: Logger,
    metrics: ProxyMetrics = ProxyMetrics(),
    clock: any SyncClock = ContinuousSyncClock(),
    eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
  ) throws {
    self.logger = logger
    self.metrics = metrics
    let health = ProxyHealth(timeout: options.sync.healthTimeout, clock: clock)
    self.health = health
    let loop = SyncLoop(
      config: config, applier: applier, options: options.sync, clock: clock, health: health,
      metrics: metrics, staleFlowCleaner: staleFlowCleaner, logger: logger)
    self.syncLoop = loop
    let ports = HealthCheckNodePorts(
      bindHost: options.healthCheckBindHost, health: health, group: eventLoopGroup,
      logger: logger)
    self.healthCheckNodePorts = ports

    var healthz: HTTPServerService?
    if !options.healthzBindAddress.isEmpty {
      guard
        let address = BindAddress(
          parsing: options.healthzBindAddress, defaultPort: DaemonOptions.defaultHealthzPort)
      else {
        throw DaemonError.invalidBindAddress(
          flag: "--healthz-bind-address", value: options.healthzBindAddress)
      }
      healthz = HTTPServerService(
        name: "healthz", address: address, group: eventLoopGroup, logger: logger,
        handler: Routes.healthz(health: health, metrics: metrics))
    }
    var metricsServer: HTTPServerService?
    if !options.metricsBindAddress.isEmpty {
      guard
        let address = BindAddress(
          parsing: options.metricsBindAddress, defaultPort: DaemonOptions.defaultMetricsPort)
      else {
        throw DaemonError.invalidBindAddress(
          flag: "--metrics-bind-address", value: options.metricsBindAddress)
      }
      metricsServer = HTTPServerService(
        name: "metrics", address: address, group: eventLoopGroup, logger: logger,
        handler: Routes.metrics(metrics: metrics))
    }
    self.healthzServer = healthz
    self.metricsServer = metricsServer

    var services: [any Service] = [
      SourceService(source: source),
      SyncLoopService(loop: loop, source: source),
      HealthCheckNodePortService(ports: ports, loop: loop),
    ]
    if let healthz { services.append(healthz) }
    if let metricsServer { services.append(metricsServer) }
    self.services = services
  }

  /// A group running ``services``; with `handleSignals` it shuts down gracefully on SIGTERM and
  /// SIGINT.
  public func serviceGroup(handleSignals: Bool = true) -> ServiceGroup {
    ServiceGroup(
      configuration: ServiceGroupConfiguration(
        services: services, gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
        logger: logger))
  }
}

/// Runs the state source's producer until graceful shutdown.
struct SourceService: Service, CustomStringConvertible {
  let source: any StateSource
  var description: String { "StateSource(\(type(of: source)))" }

  func run() async throws {
    let source = self.source
    do {
      try await cancelWhenGracefulShutdown { try await source.run() }
    } catch is CancellationError {
      // Shutdown.
    }
  }
}

/// Runs the sync loop until graceful shutdown. Leaves the rules in place.
struct SyncLoopService: Service, CustomStringConvertible {
  let loop: SyncLoop
  let source: any StateSource
  var description: String { "SyncLoop" }

  func run() async throws {
    let loop = self.loop
    let source = self.source
    await cancelWhenGracefulShutdown { await loop.run(source: source) }
  }
}

/// Keeps the health-check node ports in step with the sync loop.
struct HealthCheckNodePortService: Service, CustomStringConvertible {
  let ports: HealthCheckNodePorts
  let loop: SyncLoop
  var description: String { "HealthCheckNodePorts" }

  func run() async throws {
    await ports.follow(loop)
  }
}

/// The request handlers of the health and metrics servers.
public enum Routes {
  /// `/healthz` and `/livez` as kube-proxy serves them on `--healthz-bind-address`.
  public static func healthz(health: ProxyHealth, metrics: ProxyMetrics?) -> HTTPRequestHandler {
    { head in
      switch path(head.uri) {
      case "/healthz":
        let report = health.report()
        metrics?.recordHealthz(healthy: report.healthy && report.nodeEligible)
        return HealthResponses.healthz(report)
      case "/livez":
        let report = health.report()
        metrics?.recordLivez(healthy: report.healthy)
        return HealthResponses.livez(report)
      default:
        return .notFound
      }
    }
  }

  /// `/metrics` (Prometheus text format), plus kube-proxy's `/healthz` ping and `/proxyMode`
  /// on `--metrics-bind-address`.
  public static func metrics(metrics: ProxyMetrics) -> HTTPRequestHandler {
    { head in
      switch path(head.uri) {
      case "/metrics":
        return HTTPResponse(
          status: .ok, headers: [("Content-Type", ProxyMetrics.contentType)],
          body: metrics.exposition())
      case "/healthz":
        return .text(.ok, "ok")
      case "/proxyMode":
        return .text(.ok, "nftables")
      default:
        return .notFound
      }
    }
  }

  static func path(_ uri: String) -> Substring {
    uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
  }
}
