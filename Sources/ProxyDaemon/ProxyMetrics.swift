import IPAddr
import Metrics
import Prometheus
import Synchronization

/// kube-proxy-compatible Prometheus metrics, recorded through swift-metrics into one
/// `PrometheusCollectorRegistry`.
///
/// The metric objects are created with an explicit factory, so nothing depends on the global
/// `MetricsSystem`; each instance (for example one per test) has its own registry.
public final class ProxyMetrics: Sendable {
  /// Where the metrics live; ``exposition()`` renders it.
  public let registry: PrometheusCollectorRegistry

  /// Latency of one sync (resolve, compile, apply).
  let syncDuration: Metrics.Timer
  let fullSyncDuration: Metrics.Timer
  let partialSyncDuration: Metrics.Timer
  /// From a change's arrival to the end of the sync that programmed it.
  let networkProgrammingDuration: Metrics.Timer
  let lastSyncTimestamp: CoreMetrics.Gauge
  let lastQueuedTimestamp: CoreMetrics.Gauge
  let serviceChanges: CoreMetrics.Counter
  let endpointChanges: CoreMetrics.Counter
  let serviceChangesPending: CoreMetrics.Gauge
  let endpointChangesPending: CoreMetrics.Gauge
  let syncFailures: CoreMetrics.Counter
  let noLocalEndpointsInternal: CoreMetrics.Gauge
  let noLocalEndpointsExternal: CoreMetrics.Gauge
  let healthz200: CoreMetrics.Counter
  let healthz503: CoreMetrics.Counter
  let livez200: CoreMetrics.Counter
  let livez503: CoreMetrics.Counter
  let conntrackCleanupDuration: [IPAddress.Family: Metrics.Timer]
  let conntrackDeleted: [IPAddress.Family: CoreMetrics.Counter]

  /// The metric names, as kube-proxy spells them.
  public enum Name {
    public static let syncDuration = "kubeproxy_sync_proxy_rules_duration_seconds"
    public static let fullSyncDuration = "kubeproxy_sync_full_proxy_rules_duration_seconds"
    public static let partialSyncDuration = "kubeproxy_sync_partial_proxy_rules_duration_seconds"
    public static let networkProgrammingDuration = "kubeproxy_network_programming_duration_seconds"
    public static let lastSyncTimestamp = "kubeproxy_sync_proxy_rules_last_timestamp_seconds"
    public static let lastQueuedTimestamp =
      "kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds"
    public static let serviceChanges = "kubeproxy_sync_proxy_rules_service_changes_total"
    public static let endpointChanges = "kubeproxy_sync_proxy_rules_endpoint_changes_total"
    public static let serviceChangesPending = "kubeproxy_sync_proxy_rules_service_changes_pending"
    public static let endpointChangesPending =
      "kubeproxy_sync_proxy_rules_endpoint_changes_pending"
    public static let syncFailures = "kubeproxy_sync_proxy_rules_nftables_sync_failures_total"
    public static let noLocalEndpoints = "kubeproxy_sync_proxy_rules_no_local_endpoints_total"
    public static let healthz = "kubeproxy_healthz_total"
    public static let livez = "kubeproxy_livez_total"
    public static let conntrackCleanupDuration =
      "kubeproxy_conntrack_reconciler_sync_duration_seconds"
    public static let conntrackDeleted = "kubeproxy_conntrack_reconciler_deleted_entries_total"
  }

  /// - Parameter registry: the registry to record into; a fresh one by default.
  public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
    self.registry = registry
    var factory = PrometheusMetricsFactory(registry: registry)
    // kube-proxy: ExponentialBuckets(0.001, 2, 15) for sync latencies.
    let syncBuckets = (0..<15).map { Duration.microseconds(1000 << $0) }
    for name in [
      Name.syncDuration, Name.fullSyncDuration, Name.partialSyncDuration,
      Name.conntrackCleanupDuration,
    ] {
      factory.durationHistogramBuckets[name] = syncBuckets
    }
    // kube-proxy: 0.25 s, 0.5 s, 1 s … 59 s, 60 s … 115 s (5 s steps), 120 s … 300 s (30 s steps).
    var npBuckets: [Duration] = [.milliseconds(250), .milliseconds(500)]
    npBuckets += (1...59).map { Duration.seconds($0) }
    npBuckets += (0..<12).map { Duration.seconds(60 + 5 * $0) }
    npBuckets += (0..<7).map { Duration.seconds(120 + 30 * $0) }
    factory.durationHistogramBuckets[Name.networkProgrammingDuration] = npBuckets

    syncDuration = Metrics.Timer(label: Name.syncDuration, factory: factory)
    fullSyncDuration = Metrics.Timer(label: Name.fullSyncDuration, factory: factory)
    partialSyncDuration = Metrics.Timer(label: Name.partialSyncDuration, factory: factory)
    networkProgrammingDuration = Metrics.Timer(
      label: Name.networkProgrammingDuration, factory: factory)
    lastSyncTimestamp = CoreMetrics.Gauge(label: Name.lastSyncTimestamp, factory: factory)
    lastQueuedTimestamp = CoreMetrics.Gauge(label: Name.lastQueuedTimestamp, factory: factory)
    serviceChanges = CoreMetrics.Counter(label: Name.serviceChanges, factory: factory)
    endpointChanges = CoreMetrics.Counter(label: Name.endpointChanges, factory: factory)
    serviceChangesPending = CoreMetrics.Gauge(label: Name.serviceChangesPending, factory: factory)
    endpointChangesPending = CoreMetrics.Gauge(label: Name.endpointChangesPending, factory: factory)
    syncFailures = CoreMetrics.Counter(label: Name.syncFailures, factory: factory)
    noLocalEndpointsInternal = CoreMetrics.Gauge(
      label: Name.noLocalEndpoints, dimensions: [("traffic_policy", "internal")], factory: factory)
    noLocalEndpointsExternal = CoreMetrics.Gauge(
      label: Name.noLocalEndpoints, dimensions: [("traffic_policy", "external")], factory: factory)
    healthz200 = CoreMetrics.Counter(
      label: Name.healthz, dimensions: [("code", "200")], factory: factory)
    healthz503 = CoreMetrics.Counter(
      label: Name.healthz, dimensions: [("code", "503")], factory: factory)
    livez200 = CoreMetrics.Counter(
      label: Name.livez, dimensions: [("code", "200")], factory: factory)
    livez503 = CoreMetrics.Counter(
      label: Name.livez, dimensions: [("code", "503")], factory: factory)
    var cleanupDuration: [IPAddress.Family: Metrics.Timer] = [:]
    var deleted: [IPAddress.Family: CoreMetrics.Counter] = [:]
    for family in IPAddress.Family.allCases {
      let dimensions = [("ip_family", family.rawValue)]
      cleanupDuration[family] = Metrics.Timer(
        label: Name.conntrackCleanupDuration, dimensions: dimensions, factory: factory)
      deleted[family] = CoreMetrics.Counter(
        label: Name.conntrackDeleted, dimensions: dimensions, factory: factory)
    }
    conntrackCleanupDuration = cleanupDuration
    conntrackDeleted = deleted
  }

  /// The Prometheus text exposition of everything in ``registry``.
  public func exposition() -> String { registry.emitToString() }

  /// Content type of ``exposition()``.
  public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

  private static let bootstrapped = Mutex(false)

  /// Makes `registry` the process-wide swift-metrics backend, so metrics of other libraries
  /// land in it too. Only the first call per process has an effect; returns whether it did.
  /// Tests should not call this.
  @discardableResult
  public static func bootstrapMetricsSystem(_ registry: PrometheusCollectorRegistry) -> Bool {
    let first = bootstrapped.withLock { done -> Bool in
      defer { done = true }
      return !done
    }
    if first { MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry)) }
    return first
  }

  func recordHealthz(healthy: Bool) {
    (healthy ? healthz200 : healthz503).increment()
  }

  func recordLivez(healthy: Bool) {
    (healthy ? livez200 : livez503).increment()
  }

  func recordConntrackCleanup(family: IPAddress.Family, duration: Duration, deleted: Int) {
    conntrackCleanupDuration[family]?.recordNanoseconds(duration.nanoseconds)
    conntrackDeleted[family]?.increment(by: Int64(deleted))
  }
}

extension Duration {
  /// Whole nanoseconds, clamped at zero.
  var nanoseconds: Int64 {
    let c = components
    let ns = c.seconds &* 1_000_000_000 &+ c.attoseconds / 1_000_000_000
    return max(0, ns)
  }

  /// Seconds as a floating-point number.
  var seconds: Double {
    Double(components.seconds) + Double(components.attoseconds) * 1e-18
  }
}
