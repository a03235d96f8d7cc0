import FakeKubeAPI
import Foundation
import KubeModel
import KubeWatch
import Testing

/// Runs `informer` in a child task while `body` runs, then cancels it.
func withInformer<O: KubeObject>(
  _ informer: Informer<O>, _ body: (UpdateRecorder<O>) async throws -> Void
) async throws {
  let recorder = UpdateRecorder<O>()
  try await withThrowingTaskGroup(of: Void.self) { group in
    group.addTask { try await informer.run { recorder.record($0) } }
    try await body(recorder)
    group.cancelAll()
    do {
      try await group.next()
    } catch is CancellationError {}
  }
}

@Suite struct InformerTests {
  @Test func listThenWatchEventsUpdateTheStore() async throws {
    try await withServer { server, client in
      for i in 0..<5 { try server.put(service("s\(i)"), path: servicesPath) }
      let informer = Informer(
        client: client, resource: .services, options: fastOptions, logger: testLogger)
      try await withInformer(informer) { rec in
        try await waitUntil("initial list") { rec.count == 1 }
        let first = try #require(rec.last)
        #expect(first.reason == .initialList)
        #expect(first.objects.count == 5)
        #expect(first.changes.count == 5)
        // pageSize 2: three pages.
        #expect(server.requests(path: servicesPath, watch: false).count == 3)

        try server.put(service("new"), path: servicesPath)
        try await waitUntil("ADDED") { rec.last?.objects["default/new"] != nil }
        #expect(rec.last?.changes.map(\.key) == ["default/new"])
        #expect(rec.last?.reason == .watchEvent)

        try server.put(service("new", port: 443), path: servicesPath)
        try await waitUntil("MODIFIED") {
          rec.last?.objects["default/new"]?.spec.ports?.first?.port == 443
        }
        guard case .modified(let old, let new)? = rec.last?.changes.first else {
          Issue.record("expected a modification")
          return
        }
        #expect(old.spec.ports?.first?.port == 80 && new.spec.ports?.first?.port == 443)

        let rv = try #require(server.delete(path: servicesPath, key: "default/s0"))
        try await waitUntil("DELETED") { rec.last?.objects["default/s0"] == nil }
        #expect(rec.last?.resourceVersion == String(rv))
        guard case .deleted(let gone)? = rec.last?.changes.first else {
          Issue.record("expected a deletion")
          return
        }
        #expect(gone.metadata.name == "s0")
      }
    }
  }

  @Test func droppedConnectionResumesFromTheLastResourceVersion() async throws {
    try await withServer { server, client in
      try server.put(service("a"), path: servicesPath)
      let informer = Informer(
        client: client, resource: .services, options: fastOptions, logger: testLogger)
      try await withInformer(informer) { rec in
        try await waitUntil("watch open") { server.openWatches(path: servicesPath) == 1 }
        let rvB = try server.put(service("b"), path: servicesPath)
        try await waitUntil("b seen") { rec.last?.resourceVersion == String(rvB) }

        server.dropWatches(path: servicesPath)
        // Changed while the client is away: the resumed watch replays it.
        try server.put(service("c"), path: servicesPath)
        try await waitUntil("c seen after resume") { rec.last?.objects["default/c"] != nil }

        let watches = server.requests(path: servicesPath, watch: true)
        #expect(watches.count == 2)
        #expect(watches[1].query["resourceVersion"] == String(rvB))
        // Resumed, not relisted.
        #expect(server.requests(path: servicesPath, watch: false).count == 1)
        #expect(rec.updates.current.allSatisfy { $0.reason != .relist })
      }
    }
  }

  @Test(arguments: [FakeAPIServer.GoneMode.errorEvent, .httpStatus])
  func goneRelistsAndReplacesTheStore(mode: FakeAPIServer.GoneMode) async throws {
    try await withServer { server, client in
      server.goneMode = mode
      for name in ["a", "b", "c"] { try server.put(service(name), path: servicesPath) }
      let informer = Informer(
        client: client, resource: .services, options: fastOptions, logger: testLogger)
      try await withInformer(informer) { rec in
        try await waitUntil("watch open") { server.openWatches(path: servicesPath) == 1 }
        let listedRV = try #require(rec.last?.resourceVersion)

        // Changes the client never sees as events, then the history is compacted away.
        server.delete(path: servicesPath, key: "default/b", notify: false)
        try server.put(service("a", port: 8443), path: servicesPath, notify: false)
        try server.put(service("d"), path: servicesPath, notify: false)
        server.compact()
        server.dropWatches(path: servicesPath)

        try await waitUntil("relist") { rec.updates.current.contains { $0.reason == .relist } }
        let relist = try #require(rec.updates.current.first { $0.reason == .relist })
        #expect(relist.objects.keys.sorted() == ["default/a", "default/c", "default/d"])
        #expect(relist.resourceVersion == String(server.currentResourceVersion))
        var kinds: [String: String] = [:]
        for change in relist.changes {
          switch change {
          case .added: kinds[change.key] = "added"
          case .modified: kinds[change.key] = "modified"
          case .deleted: kinds[change.key] = "deleted"
          }
        }
        #expect(kinds == ["default/a": "modified", "default/b": "deleted", "default/d": "added"])

        // Two lists (pageSize 2, so two pages each); each starts without a continue token.
        let lists = server.requests(path: servicesPath, watch: false)
        #expect(lists.filter { $0.query["continue"] == nil }.count == 2)
        #expect(lists.count == 4)
        try await waitUntil("watch after relist") {
          server.requests(path: servicesPath, watch: true).count == 3
        }
        let watches = server.requests(path: servicesPath, watch: true)
        #expect(watches[1].query["resourceVersion"] == listedRV)
        #expect(watches[2].query["resourceVersion"] == relist.resourceVersion)

        // And the new watch delivers events.
        try server.put(service("e"), path: servicesPath)
        try await waitUntil("e") { rec.last?.objects["default/e"] != nil }
      }
    }
  }

  @Test func bookmarksAdvanceTheResourceVersion() async throws {
    try await withServer { server, client in
      try server.put(service("a"), path: servicesPath)
      let informer = Informer(
        client: client, resource: .services, options: fastOptions, logger: testLogger)
      try await withInformer(informer) { rec in
        try await waitUntil("watch open") { server.openWatches(path: servicesPath) == 1 }
        let listedRV = try #require(rec.last?.resourceVersion)
        let bookmarkRV = server.sendBookmark(path: servicesPath, advanceBy: 10)
        // The server ends the watch (its timeout); the client resumes from the bookmark.
        server.endWatches(path: servicesPath)
        try await waitUntil("second watch") {
          server.requests(path: servicesPath, watch: true).count == 2
        }
        let watches = server.requests(path: servicesPath, watch: true)
        #expect(watches[0].query["resourceVersion"] == listedRV)
        #expect(watches[1].query["resourceVersion"] == String(bookmarkRV))
        #expect(String(bookmarkRV) != listedRV)
        #expect(server.requests(path: servicesPath, watch: false).count == 1)
        #expect(rec.count == 1)  // a bookmark changes nothing in the store
      }
    }
  }

  @Test func invalidAndUndecodableObjectsAreExcludedWithoutStoppingTheWatch() async throws {
    try await withServer { server, client in
      try server.put(service("a"), path: servicesPath)
      try server.put(service("broken-at-start", port: 70000), path: servicesPath)
      let informer = Informer(
        client: client, resource: .services, options: fastOptions,
        validate: ClusterValidators.standard.service, logger: testLogger)
      try await withInformer(informer) { rec in
        try await waitUntil("initial list") { rec.count == 1 }
        #expect(rec.last?.objects.keys.sorted() == ["default/a"])

        try server.put(service("bad-port", port: 70000), path: servicesPath)
        try server.putRaw(
          ["metadata": ["name": "undecodable", "namespace": "default"], "spec": ["ports": 5]],
          path: servicesPath)
        try server.put(service("b"), path: servicesPath)
        try await waitUntil("b after the bad ones") { rec.last?.objects["default/b"] != nil }
        #expect(rec.last?.objects.keys.sorted() == ["default/a", "default/b"])

        // An object that becomes invalid leaves the store.
        try server.put(service("a", port: 0), path: servicesPath)
        try await waitUntil("a excluded") { rec.last?.objects["default/a"] == nil }
        #expect(server.requests(path: servicesPath, watch: true).count == 1)
      }
    }
  }

  @Test func failuresAreRetriedUntilTheServerAcceptsTheToken() async throws {
    try await withServer(token: "good") { server, _ in
      let bad = try makeClient(server, token: "bad")
      server.token = "bad-then-good"
      let informer = Informer(
        client: bad, resource: .services, options: fastOptions, logger: testLogger)
      try await withInformer(informer) { rec in
        try await waitUntil("a few failed lists") {
          server.requests(path: servicesPath, watch: false).count >= 3
        }
        #expect(rec.count == 0)
        server.token = "bad"
        try await waitUntil("list after recovery") { rec.count == 1 }
      }
      try await bad.shutdown()
    }
  }

  @Test func backoffDoublesToTheCapWithJitter() {
    var b = Backoff(initial: .milliseconds(500), maximum: .seconds(30), jitter: 0.2)
    var delays: [Duration] = []
    for _ in 0..<10 { delays.append(b.nextDelay()) }
    let expected: [Double] = [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30]
    for (d, e) in zip(delays, expected) {
      let s = Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
      #expect(s >= e * 0.8 - 1e-9 && s <= e * 1.2 + 1e-9, "\(s) vs \(e)")
    }
    b.reset()
    #expect(b.failures == 0)
  }
}
