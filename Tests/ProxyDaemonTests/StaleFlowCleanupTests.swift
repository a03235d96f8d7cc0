import IPAddr
import KubeModel
import ProxyCore
import ProxyDaemon
import Testing

@Suite struct StaleFlowCleanupTests {
  typealias HP = StaleUDPFilter.HostPort

  let clock = ManualClock()
  let applier: FakeRuleApplier
  let cleaner = FakeStaleFlowCleaner(deletes: 2)
  let metrics = ProxyMetrics()
  let loop: SyncLoop

  init() {
    applier = FakeRuleApplier(clock: clock)
    loop = SyncLoop(
      config: testConfig, applier: applier, clock: clock, metrics: metrics,
      staleFlowCleaner: cleaner, logger: quietLogger)
  }

  static let vip = HP(IPAddress("10.96.0.53")!, 53)

  static func endpoint(_ ip: String) -> HP { HP(IPAddress(ip)!, 5353) }

  /// `cluster(generation:)` plus a UDP "dns" Service on 10.96.0.53:53 with `endpoints`.
  static func state(generation: Int = 0, dns endpoints: [String]) -> ClusterState {
    var s = cluster(generation: generation)
    s.services.append(
      Service(
        metadata: ObjectMeta(name: "dns", namespace: "kube-system"),
        spec: ServiceSpec(
          type: "ClusterIP", clusterIP: "10.96.0.53", clusterIPs: ["10.96.0.53"],
          ports: [ServicePort(name: "dns", protocol: "UDP", port: 53, targetPort: .int(5353))])))
    s.endpointSlices.append(
      EndpointSlice(
        metadata: ObjectMeta(
          name: "dns-abc", namespace: "kube-system",
          labels: [EndpointSlice.serviceNameLabel: "dns"]),
        addressType: "IPv4",
        endpoints: endpoints.map { Endpoint(addresses: [$0], nodeName: "node-b") },
        ports: [EndpointPort(name: "dns", protocol: "UDP", port: 5353)]))
    return s
  }

  @Test func firstSyncChecksEveryFrontendThenOnlyChangedOnes() async throws {
    try await withRunningLoop(loop) { [clock, applier, cleaner, loop, metrics] in
      await loop.enqueue(StateUpdate(state: Self.state(dns: ["10.244.1.5", "10.244.2.5"])))
      try await eventually("the first cleanup") { cleaner.calls.count == 1 }
      let first = cleaner.calls[0]
      #expect(first.family == .ipv4)
      #expect(
        first.filter.frontends == [
          Self.vip: [Self.endpoint("10.244.1.5"), Self.endpoint("10.244.2.5")]
        ])
      try await waitIdle(clock, until: .seconds(30))

      // An endpoint goes: a partial sync, and only the dns frontend is checked.
      await loop.enqueue(StateUpdate(state: Self.state(generation: 1, dns: ["10.244.1.5"])))
      clock.advance(by: .seconds(1))
      try await eventually("the second cleanup") { cleaner.calls.count == 2 }
      #expect(!applier.calls[1].full)
      #expect(cleaner.calls[1].filter.frontends == [Self.vip: [Self.endpoint("10.244.1.5")]])
      try await waitIdle(clock, until: .seconds(30))

      // Only TCP services change: nothing to check, no conntrack dump.
      await loop.enqueue(StateUpdate(state: Self.state(generation: 2, dns: ["10.244.1.5"])))
      clock.advance(by: .seconds(1))
      try await withTimeout { await applier.waitForCalls(3) }
      try await waitIdle(clock, until: .seconds(30))
      #expect(cleaner.calls.count == 2)

      // The periodic full resync checks everything again.
      clock.advance(by: .seconds(28))
      try await withTimeout { await applier.waitForCalls(4) }
      try await eventually("the resync cleanup") { cleaner.calls.count == 3 }
      #expect(applier.calls[3].full)
      #expect(cleaner.calls[2].filter.frontends == [Self.vip: [Self.endpoint("10.244.1.5")]])

      let text = metrics.exposition()
      #expect(
        text.contains(#"kubeproxy_conntrack_reconciler_deleted_entries_total{ip_family="IPv4"} 6"#),
        "\(text)")
      #expect(
        text.contains(
          #"kubeproxy_conntrack_reconciler_sync_duration_seconds_count{ip_family="IPv4"} 3"#))
    }
  }

  @Test func aFailedCleanupLeavesTheSyncSuccessfulAndIsRetriedInFull() async throws {
    cleaner.failNext(1)
    try await withRunningLoop(loop) { [clock, applier, cleaner, loop] in
      await loop.enqueue(StateUpdate(state: Self.state(dns: ["10.244.1.5"])))
      try await eventually("the first cleanup") { cleaner.calls.count == 1 }
      #expect(cleaner.calls[0].failed)
      try await waitIdle(clock, until: .seconds(30))
      let status = await loop.status
      #expect(status.syncs == 1)
      #expect(status.failures == 0)
      #expect(status.lastError == nil)

      // Nothing UDP changes, but the failed cleanup is made up for after the next sync.
      await loop.enqueue(StateUpdate(state: Self.state(generation: 1, dns: ["10.244.1.5"])))
      clock.advance(by: .seconds(1))
      try await eventually("the retried cleanup") { cleaner.calls.count == 2 }
      #expect(!applier.calls[1].full)
      #expect(!cleaner.calls[1].failed)
      #expect(cleaner.calls[1].filter.frontends == [Self.vip: [Self.endpoint("10.244.1.5")]])
      try await waitIdle(clock, until: .seconds(30))

      await loop.enqueue(StateUpdate(state: Self.state(generation: 2, dns: ["10.244.1.5"])))
      clock.advance(by: .seconds(1))
      try await withTimeout { await applier.waitForCalls(3) }
      try await waitIdle(clock, until: .seconds(30))
      #expect(cleaner.calls.count == 2)
    }
  }

  @Test func syncOnceChecksEveryFrontend() async throws {
    try await loop.syncOnce(Self.state(dns: ["10.244.1.5"]))
    try await loop.syncOnce(Self.state(dns: ["10.244.1.5"]))
    #expect(cleaner.calls.count == 2)
    #expect(cleaner.calls.allSatisfy { $0.filter.frontends.keys.contains(Self.vip) })
  }
}
