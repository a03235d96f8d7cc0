import KubeModel
import NFTables
import ProxyCore
import ProxyDaemon
import Testing

@Suite struct SyncLoopTests {
  let clock = ManualClock()
  let applier: FakeRuleApplier
  let loop: SyncLoop

  init() {
    applier = FakeRuleApplier(clock: clock)
    loop = SyncLoop(config: testConfig, applier: applier, clock: clock, logger: quietLogger)
  }

  @Test func firstSyncWaitsForTheInitialState() async throws {
    let source = StateChannel()
    try await withRunningLoop(loop, source: source) { [clock, applier, loop] in
      // Time passes, but without a complete view there is nothing to sync, not even a resync.
      for _ in 0..<5 {
        clock.advance(by: .seconds(40))
        await Task.yield()
      }
      #expect(applier.calls.isEmpty)
      let status = await loop.status
      #expect(!status.hasState)
      #expect(status.nextSyncAt == nil)
      #expect(clock.sleeperCount == 0)

      let initial = cluster(generation: 1)
      source.send(StateUpdate(state: initial, serviceChanges: 2, endpointChanges: 2))
      try await withTimeout("the first sync") { await applier.waitForCalls(1) }
      let call = applier.calls[0]
      #expect(call.full)
      #expect(call.ruleset == expectedRuleset(initial))
      #expect(await loop.resolved == Resolver.resolve(initial, config: testConfig))
    }
  }

  @Test func manyUpdatesCoalesceIntoOneSync() async throws {
    try await withRunningLoop(loop) { [clock, applier, loop] in
      await loop.enqueue(StateUpdate(state: cluster(generation: 0)))
      try await withTimeout { await applier.waitForCalls(1) }
      try await waitIdle(clock, until: .seconds(30))

      for g in 1...20 {
        await loop.enqueue(StateUpdate(state: cluster(generation: g), serviceChanges: 1))
      }
      #expect(await loop.status.nextSyncAt == .seconds(1))
      clock.advance(by: .seconds(1))
      try await withTimeout { await applier.waitForCalls(2) }
      try await waitIdle(clock, until: .seconds(30))

      let calls = applier.calls
      #expect(calls.count == 2)
      #expect(calls[1].ruleset == expectedRuleset(cluster(generation: 20)))
      #expect(!calls[1].full)
      let status = await loop.status
      #expect(status.syncs == 2)
      #expect(!status.pending)
    }
  }

  @Test func minSyncPeriodIsRespected() async throws {
    try await withRunningLoop(loop) { [clock, applier, loop] in
      await loop.enqueue(StateUpdate(state: cluster(generation: 0)))
      try await withTimeout { await applier.waitForCalls(1) }
      try await waitIdle(clock, until: .seconds(30))

      // A change right after a sync waits for the rest of the period.
      await loop.enqueue(StateUpdate(state: cluster(generation: 1)))
      try await waitIdle(clock, until: .seconds(1))
      clock.advance(by: .milliseconds(500))
      try await waitIdle(clock, until: .seconds(1))
      #expect(applier.calls.count == 1)
      clock.advance(by: .milliseconds(500))
      try await withTimeout { await applier.waitForCalls(2) }
      #expect(applier.calls[1].at == .seconds(1))
      #expect(!applier.calls[1].full)

      // A change long after the last sync is synced at once.
      try await waitIdle(clock, until: .seconds(30))
      clock.advance(by: .seconds(9))
      await loop.enqueue(StateUpdate(state: cluster(generation: 2)))
      try await withTimeout { await applier.waitForCalls(3) }
      #expect(applier.calls[2].at == .seconds(10))
      #expect(!applier.calls[2].full)

      // Again one right after: due one period after the previous sync started.
      await loop.enqueue(StateUpdate(state: cluster(generation: 3)))
      try await waitIdle(clock, until: .seconds(11))
      clock.advance(by: .seconds(1))
      try await withTimeout { await applier.waitForCalls(4) }
      #expect(applier.calls[3].at == .seconds(11))
    }
  }

  @Test func periodicFullResync() async throws {
    try await withRunningLoop(loop) { [clock, applier, loop] in
      let state = cluster(generation: 1)
      await loop.enqueue(StateUpdate(state: state))
      try await withTimeout { await applier.waitForCalls(1) }
      try await waitIdle(clock, until: .seconds(30))

      // A partial sync in between does not move the full resync.
      clock.advance(by: .seconds(5))
      await loop.enqueue(StateUpdate(state: cluster(generation: 2)))
      try await withTimeout { await applier.waitForCalls(2) }
      #expect(!applier.calls[1].full)
      try await waitIdle(clock, until: .seconds(30))

      clock.advance(by: .seconds(25))
      try await withTimeout { await applier.waitForCalls(3) }
      #expect(applier.calls[2].full)
      #expect(applier.calls[2].at == .seconds(30))
      #expect(applier.calls[2].ruleset == expectedRuleset(cluster(generation: 2)))

      try await waitIdle(clock, until: .seconds(60))
      clock.advance(by: .seconds(30))
      try await withTimeout { await applier.waitForCalls(4) }
      #expect(applier.calls[3].full)
      #expect(applier.calls[3].at == .seconds(60))
      let status = await loop.status
      #expect(status.syncs == 4)
      #expect(status.fullSyncs == 3)
      #expect(status.lastFullSyncAt == .seconds(60))
    }
  }

  @Test func failedSyncRetriesWithBackoffThenSyncsFull() async throws {
    try await withRunningLoop(loop) { [clock, applier, loop] in
      await loop.enqueue(StateUpdate(state: cluster(generation: 0)))
      try await withTimeout { await applier.waitForCalls(1) }
      try await waitIdle(clock, until: .seconds(30))

      applier.failNext(3)
      await loop.enqueue(StateUpdate(state: cluster(generation: 1)))
      clock.advance(by: .seconds(1))
      // 1 s: partial, fails; retry after 1 s, full.
      try await withTimeout { await applier.waitForCalls(2) }
      try await waitIdle(clock, until: .seconds(2))
      var status = await loop.status
      #expect(status.consecutiveFailures == 1)
      #expect(status.nextSyncFull)
      #expect(status.pending)
      #expect(status.lastError != nil)

      // 2 s: full, fails; retry after 2 s.
      clock.advance(by: .seconds(1))
      try await withTimeout { await applier.waitForCalls(3) }
      try await waitIdle(clock, until: .seconds(4))
      // 4 s: fails; retry after 4 s.
      clock.advance(by: .seconds(2))
      try await withTimeout { await applier.waitForCalls(4) }
      try await waitIdle(clock, until: .seconds(8))
      clock.advance(by: .seconds(3))
      try await waitIdle(clock, until: .seconds(8))
      #expect(applier.calls.count == 4)
      // 8 s: succeeds, full, with the newest state.
      clock.advance(by: .seconds(1))
      try await withTimeout { await applier.waitForCalls(5) }

      let calls = applier.calls
      #expect(calls.map(\.at) == [.seconds(0), .seconds(1), .seconds(2), .seconds(4), .seconds(8)])
      #expect(calls.map(\.full) == [true, false, true, true, true])
      #expect(calls.map(\.failed) == [false, true, true, true, false])
      #expect(calls[4].ruleset == expectedRuleset(cluster(generation: 1)))
      status = await loop.status
      #expect(status.consecutiveFailures == 0)
      #expect(status.failures == 3)
      #expect(status.lastError == nil)
      #expect(!status.pending)

      // Back to normal: the next change is partial again.
      try await waitIdle(clock, until: .seconds(38))
      await loop.enqueue(StateUpdate(state: cluster(generation: 2)))
      clock.advance(by: .seconds(1))
      try await withTimeout { await applier.waitForCalls(6) }
      #expect(applier.calls[5].at == .seconds(9))
      #expect(!applier.calls[5].full)
    }
  }

  @Test func backoffIsCapped() {
    let options = SyncOptions(
      minSyncPeriod: .seconds(1), syncPeriod: .seconds(30), initialBackoff: .seconds(1),
      maxBackoff: .seconds(10))
    #expect(
      (1...6).map { options.backoff(afterFailures: $0) }
        == [1, 2, 4, 8, 10, 10].map { .seconds($0) })
    #expect(options.healthTimeout == .seconds(60))
  }

  @Test func syncOnceAppliesFullAndReportsFailure() async throws {
    let result = try await loop.syncOnce(cluster(generation: 1))
    #expect(result.kind == .full)
    #expect(applier.calls.count == 1)
    #expect(applier.calls[0].full)
    applier.failNext(1)
    await #expect(throws: FakeRuleApplier.InjectedFailure.self) {
      try await loop.syncOnce(cluster(generation: 2))
    }
    let status = await loop.status
    #expect(status.syncs == 1)
    #expect(status.failures == 1)
  }

  @Test func snapshotsFollowSuccessfulSyncs() async throws {
    let snapshots = await loop.snapshots()
    try await withRunningLoop(loop) { [applier, loop] in
      applier.failNext(1)
      await loop.enqueue(StateUpdate(state: cluster(generation: 3)))
      try await withTimeout { await applier.waitForCalls(1) }
      #expect(await loop.lastSnapshot == nil)
      #expect(await loop.resolved == nil)
    }
    try await withRunningLoop(loop) { [clock, applier] in
      clock.advance(by: .seconds(5))
      try await withTimeout { await applier.waitForCalls(2) }
      let first = try await withTimeout {
        var iterator = snapshots.makeAsyncIterator()
        return await iterator.next()
      }
      #expect(first?.state == cluster(generation: 3))
      #expect(first?.full == true)
      #expect(first?.resolved.servicePorts.count == 4)
    }
  }

  @Test func diffCountsChangedObjects() {
    let a = cluster(generation: 2)
    var b = a
    b.services.removeLast()
    b.endpointSlices[0].endpoints?.append(Endpoint(addresses: ["10.244.3.3"], nodeName: "node-c"))
    b.services.append(clusterIPService("new", ip: "10.96.9.9"))
    let u = StateUpdate.diff(from: a, to: b)
    #expect(u.serviceChanges == 2)
    #expect(u.endpointChanges == 1)
    let first = StateUpdate.diff(from: nil, to: a)
    #expect(first.serviceChanges == 3)
    #expect(first.endpointChanges == 3)
  }

  @Test func noLocalEndpointsCounts() {
    let state = ClusterState(
      services: [
        clusterIPService("itp", ip: "10.96.0.20", internalLocal: true),
        localLBService("lb", ip: "10.96.0.21", nodePort: 30080, healthCheckNodePort: 32000),
        localLBService("lb-ok", ip: "10.96.0.22", nodePort: 30090, healthCheckNodePort: 32001),
      ],
      endpointSlices: [
        slice(for: "itp", [("10.244.2.1", "node-b", true)]),
        slice(for: "lb", [("10.244.2.2", "node-b", true)]),
        slice(for: "lb-ok", [("10.244.1.2", nodeName, true)]),
      ])
    let counts = NoLocalEndpoints(Resolver.resolve(state, config: testConfig))
    #expect(counts.internal == 1)
    #expect(counts.external == 2)  // both ports of "lb"
  }
}
