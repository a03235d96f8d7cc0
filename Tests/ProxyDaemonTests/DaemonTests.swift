import KubeModel
import NIOCore
import NIOPosix
import ProxyCore
import ProxyDaemon
import ServiceLifecycle
import Testing

/// A daemon on 127.0.0.1 ephemeral ports with a fake applier, a manual clock and a hand-fed
/// source, running in a ServiceGroup.
final class TestDaemon: Sendable {
  let clock = ManualClock()
  let applier: FakeRuleApplier
  let source = StateChannel()
  let daemon: Daemon
  let group: ServiceGroup
  let task: Task<Void, any Error>

  init() throws {
    applier = FakeRuleApplier(clock: clock)
    daemon = try Daemon(
      config: testConfig,
      options: DaemonOptions(
        healthzBindAddress: "127.0.0.1:0", metricsBindAddress: "127.0.0.1:0",
        healthCheckBindHost: "127.0.0.1"),
      source: source, applier: applier, logger: quietLogger, clock: clock)
    let group = daemon.serviceGroup(handleSignals: false)
    self.group = group
    task = Task { try await group.run() }
  }

  var healthzPort: Int {
    get async throws {
      try await withTimeout("healthz to listen") { [daemon] in
        try await daemon.healthzServer!.boundAddress().port!
      }
    }
  }

  var metricsPort: Int {
    get async throws {
      try await withTimeout("metrics to listen") { [daemon] in
        try await daemon.metricsServer!.boundAddress().port!
      }
    }
  }

  /// Sends `update` and waits until the loop has taken it.
  func send(_ update: StateUpdate) async throws {
    let before = await daemon.syncLoop.status
    source.send(update)
    try await eventually("the update to be queued") { [daemon] in
      let now = await daemon.syncLoop.status
      return now.pending || now.syncs != before.syncs || now.failures != before.failures
    }
  }

  func waitForSyncs(_ n: Int) async throws {
    try await eventually("\(n) successful syncs") { [daemon] in
      await daemon.syncLoop.status.syncs >= n
    }
  }

  func stop() async throws {
    await group.triggerGracefulShutdown()
    try await withTimeout("the daemon to stop") { [task] in try await task.value }
  }
}

@Suite struct DaemonTests {
  @Test func healthzTurnsUnhealthyWhenAChangeIsStuck() async throws {
    let d = try TestDaemon()
    let port = try await d.healthzPort

    // Healthy before the first state, as kube-proxy.
    #expect(try await get(port: port, "/healthz").status == 200)

    try await d.send(StateUpdate(state: cluster(generation: 0), serviceChanges: 1))
    try await d.waitForSyncs(1)
    var r = try await get(port: port, "/healthz")
    #expect(r.status == 200)
    #expect(r.header("Content-Type") == "application/json")
    #expect(r.header("X-Content-Type-Options") == "nosniff")
    let json = try #require(r.json)
    #expect(json["nodeEligible"] as? Bool == true)
    #expect(json["lastUpdated"] is String)
    #expect(json["currentTime"] is String)
    #expect(json["lastUpdated"] as? String == json["currentTime"] as? String)
    r = try await get(port: port, "/livez")
    #expect(r.status == 200)
    #expect(r.json?["lastUpdated"] is String)
    #expect(r.json?["nodeEligible"] == nil)

    // Every sync fails from now on: the change queued at 0 s waits.
    d.applier.setFailing(true)
    try await d.send(StateUpdate(state: cluster(generation: 1), serviceChanges: 1))
    d.clock.advance(by: .seconds(1))
    try await eventually("a failed sync") { await d.daemon.syncLoop.status.failures >= 1 }
    d.clock.advance(by: .seconds(59))
    // 60 s: at the timeout (2 × sync period), not past it.
    #expect(try await get(port: port, "/healthz").status == 200)
    d.clock.advance(by: .seconds(1))
    r = try await get(port: port, "/healthz")
    #expect(r.status == 503)
    #expect(r.json?["nodeEligible"] as? Bool == true)
    #expect(r.json?["lastUpdated"] as? String != r.json?["currentTime"] as? String)
    #expect(try await get(port: port, "/livez").status == 503)
    #expect(try await get(port: port, "/nothing").status == 404)

    // The kernel accepts the rules again: healthy after the next retry.
    d.applier.setFailing(false)
    d.clock.advance(by: .seconds(30))
    try await eventually("a successful retry") {
      await d.daemon.syncLoop.status.consecutiveFailures == 0
    }
    #expect(try await get(port: port, "/healthz").status == 200)
    #expect(try await get(port: port, "/livez").status == 200)
    try await d.stop()
  }

  @Test func metricsUseKubeProxyNames() async throws {
    let d = try TestDaemon()
    let port = try await d.metricsPort
    let base = ClusterState(
      services: [
        clusterIPService("itp", ip: "10.96.0.20", internalLocal: true),
        localLBService("lb", ip: "10.96.0.21", nodePort: 30080, healthCheckNodePort: 0),
      ],
      endpointSlices: [
        slice(for: "itp", [("10.244.2.1", "node-b", true)]),
        slice(for: "lb", [("10.244.2.2", "node-b", true)]),
      ])
    func state(_ g: Int) -> ClusterState {
      var s = cluster(generation: g)
      s.services += base.services
      s.endpointSlices += base.endpointSlices
      return s
    }

    // Before any sync the metrics exist with zero values.
    var m = parseMetrics(try await get(port: port, "/metrics").body)
    #expect(m["kubeproxy_sync_proxy_rules_duration_seconds_count"] == 0)

    try await d.send(StateUpdate(state: state(0), serviceChanges: 3, endpointChanges: 3))
    try await d.waitForSyncs(1)
    try await d.send(StateUpdate(state: state(1), serviceChanges: 1, endpointChanges: 1))
    d.clock.advance(by: .seconds(1))
    try await d.waitForSyncs(2)
    d.applier.failNext(1)
    try await d.send(StateUpdate(state: state(2), serviceChanges: 1, endpointChanges: 2))
    d.clock.advance(by: .seconds(1))
    try await eventually("a failed sync") { await d.daemon.syncLoop.status.failures == 1 }
    d.clock.advance(by: .seconds(1))
    try await d.waitForSyncs(3)

    let r = try await get(port: port, "/metrics")
    #expect(r.status == 200)
    #expect(r.header("Content-Type")?.hasPrefix("text/plain") == true)
    #expect(r.body.contains("# TYPE kubeproxy_sync_proxy_rules_duration_seconds histogram"))
    m = parseMetrics(r.body)
    #expect(m["kubeproxy_sync_proxy_rules_duration_seconds_count"] == 3)
    #expect(m["kubeproxy_sync_full_proxy_rules_duration_seconds_count"] == 2)
    #expect(m["kubeproxy_sync_partial_proxy_rules_duration_seconds_count"] == 1)
    #expect(m["kubeproxy_sync_proxy_rules_duration_seconds_bucket{le=\"+Inf\"}"] == 3)
    #expect(m["kubeproxy_network_programming_duration_seconds_count"] == 3)
    #expect((m["kubeproxy_network_programming_duration_seconds_sum"] ?? -1) >= 0)
    #expect((m["kubeproxy_sync_proxy_rules_last_timestamp_seconds"] ?? 0) > 1_600_000_000)
    #expect(m["kubeproxy_sync_proxy_rules_service_changes_total"] == 5)
    #expect(m["kubeproxy_sync_proxy_rules_endpoint_changes_total"] == 6)
    #expect(m["kubeproxy_sync_proxy_rules_nftables_sync_failures_total"] == 1)
    #expect(m["kubeproxy_sync_proxy_rules_service_changes_pending"] == 0)
    #expect(
      m["kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy=\"internal\"}"] == 1)
    #expect(
      m["kubeproxy_sync_proxy_rules_no_local_endpoints_total{traffic_policy=\"external\"}"] == 2)

    // kube-proxy's other endpoints on the metrics port.
    #expect(try await get(port: port, "/healthz").body == "ok")
    #expect(try await get(port: port, "/proxyMode").body == "nftables")

    // /healthz requests are counted.
    let hp = try await d.healthzPort
    _ = try await get(port: hp, "/healthz")
    m = parseMetrics(try await get(port: port, "/metrics").body)
    #expect(m["kubeproxy_healthz_total{code=\"200\"}"] == 1)
    try await d.stop()
  }

  @Test func healthCheckNodePortFollowsTheService() async throws {
    let d = try TestDaemon()
    let hc = try await freePort()
    let lb = localLBService(
      "lb", ns: "shop", ip: "10.96.0.30", nodePort: 30100, healthCheckNodePort: hc)
    let withLocal = ClusterState(
      services: [lb],
      endpointSlices: [
        slice(
          for: "lb", ns: "shop", [("10.244.1.7", nodeName, true), ("10.244.2.7", "node-b", true)])
      ])
    try await d.send(StateUpdate(state: withLocal))
    try await d.waitForSyncs(1)
    try await eventually("the health-check node port to open") {
      await d.daemon.healthCheckNodePorts.openPorts == [hc]
    }
    var r = try await get(port: hc, "/")
    #expect(r.status == 200)
    #expect(r.header("Content-Type") == "application/json")
    #expect(r.header("X-Content-Type-Options") == "nosniff")
    let json = try #require(r.json)
    let svc = json["service"] as? [String: Any]
    #expect(svc?["namespace"] as? String == "shop")
    #expect(svc?["name"] as? String == "lb")
    #expect(json["localEndpoints"] as? Int == 1)
    #expect(json["serviceProxyHealthy"] as? Bool == true)

    // The local endpoint goes away: 503 with a count of 0.
    var remoteOnly = withLocal
    remoteOnly.endpointSlices = [slice(for: "lb", ns: "shop", [("10.244.2.7", "node-b", true)])]
    try await d.send(StateUpdate(state: remoteOnly, endpointChanges: 1))
    d.clock.advance(by: .seconds(1))
    try await d.waitForSyncs(2)
    try await eventually("the count to drop") {
      await d.daemon.healthCheckNodePorts.served[hc]?.localEndpoints == 0
    }
    r = try await get(port: hc, "/")
    #expect(r.status == 503)
    #expect(r.json?["localEndpoints"] as? Int == 0)

    // The Service goes away: the listener closes.
    try await d.send(StateUpdate(state: ClusterState(), serviceChanges: 1, endpointChanges: 1))
    d.clock.advance(by: .seconds(1))
    try await d.waitForSyncs(3)
    try await eventually("the health-check node port to close") {
      await d.daemon.healthCheckNodePorts.openPorts.isEmpty
    }
    #expect(await connectionRefused(port: hc))
    try await d.stop()
  }

  @Test func shutdownLeavesTheRulesAndClosesListeners() async throws {
    let d = try TestDaemon()
    let hp = try await d.healthzPort
    let mp = try await d.metricsPort
    try await d.send(StateUpdate(state: cluster(generation: 2)))
    try await d.waitForSyncs(1)
    try await d.stop()

    // No further call: nothing removed or replaced on the way out.
    #expect(d.applier.calls.count == 1)
    #expect(d.applier.calls[0].ruleset == expectedRuleset(cluster(generation: 2)))
    #expect(await connectionRefused(port: hp))
    #expect(await connectionRefused(port: mp))
  }

  @Test func bindAddressesParseLikeKubeProxy() throws {
    #expect(
      BindAddress(parsing: "0.0.0.0:10256", defaultPort: 1)
        == BindAddress(host: "0.0.0.0", port: 10256))
    #expect(
      BindAddress(parsing: ":10249", defaultPort: 1) == BindAddress(host: "0.0.0.0", port: 10249))
    #expect(BindAddress(parsing: "[::1]:80", defaultPort: 1) == BindAddress(host: "::1", port: 80))
    #expect(BindAddress(parsing: "::", defaultPort: 10256) == BindAddress(host: "::", port: 10256))
    #expect(
      BindAddress(parsing: "127.0.0.1", defaultPort: 10249)
        == BindAddress(host: "127.0.0.1", port: 10249))
    #expect(BindAddress(parsing: "1.2.3.4:99999", defaultPort: 1) == nil)
    #expect(BindAddress(parsing: "[::1", defaultPort: 1) == nil)
    #expect(throws: DaemonError.self) {
      _ = try Daemon(
        config: testConfig, options: DaemonOptions(healthzBindAddress: "x:y"),
        source: StateChannel(), applier: FakeRuleApplier(), logger: quietLogger)
    }
  }
}
