import FakeKubeAPI
import Foundation
import KubeModel
import KubeWatch
import Testing

/// Runs `watcher` and a consumer of its snapshots while `body` runs, then cancels both.
func withWatcher(
  _ watcher: ClusterWatcher, _ body: (Locked<[ClusterSnapshot]>) async throws -> Void
) async throws {
  let received = Locked<[ClusterSnapshot]>([])
  try await withThrowingTaskGroup(of: Void.self) { group in
    group.addTask { try await watcher.run() }
    group.addTask {
      for await snapshot in watcher.snapshots { received.mutate { $0.append(snapshot) } }
    }
    try await body(received)
    group.cancelAll()
    while true {
      do {
        guard try await group.next() != nil else { break }
      } catch is CancellationError {}
    }
  }
}

@Suite struct ClusterWatcherTests {
  @Test func yieldsNothingUntilAllInitialListsAreIn() async throws {
    try await withServer { server, client in
      try server.put(service("a"), path: servicesPath)
      try server.put(service("b", clusterIP: "10.96.0.11"), path: servicesPath)
      try server.put(slice("a-1", service: "a", addresses: ["10.244.0.5"]), path: slicesPath)
      try server.put(node("node-1"), path: nodesPath)
      try server.put(node("node-2"), path: nodesPath)
      server.holdLists(path: nodesPath)

      let watcher = ClusterWatcher(
        client: client, nodeName: "node-1", options: fastOptions, logger: testLogger)
      try await withWatcher(watcher) { received in
        // Services and slices are listed and watched (the informers handed their lists over
        // before starting to watch); the node list is held back by the server.
        try await waitUntil("services and slices watched") {
          server.openWatches(path: servicesPath) == 1 && server.openWatches(path: slicesPath) == 1
            && server.requests(path: nodesPath, watch: false).count == 1
        }
        #expect(await watcher.snapshot() == nil)
        #expect(await !watcher.hasSynced())
        #expect(received.current.isEmpty)

        server.releaseLists(path: nodesPath)
        try await waitUntil("first snapshot") { !received.current.isEmpty }
        let first = try #require(received.current.first)
        #expect(first.generation == 1)
        #expect(first.state.services.map(\.key) == ["default/a", "default/b"])
        #expect(first.state.endpointSlices.map(\.key) == ["default/a-1"])
        #expect(first.state.nodes.map { $0.metadata.name } == ["node-1"])
        #expect(first.serviceChanges == 2 && first.endpointChanges == 1 && first.nodeChanges == 1)
        #expect(await watcher.snapshot() == first)
      }
    }
  }

  @Test func watchEventsUpdateSnapshotsAndCounters() async throws {
    try await withServer { server, client in
      try server.put(service("a"), path: servicesPath)
      try server.put(slice("a-1", service: "a", addresses: ["10.244.0.5"]), path: slicesPath)
      try server.put(node("node-1"), path: nodesPath)
      let watcher = ClusterWatcher(
        client: client, nodeName: "node-1", options: fastOptions, logger: testLogger)
      try await withWatcher(watcher) { received in
        func state() async -> ClusterState? { await watcher.snapshot()?.state }
        try await waitUntil("synced") { await watcher.hasSynced() }

        // Create.
        try server.put(service("b", clusterIP: "10.96.0.11"), path: servicesPath)
        try server.put(slice("b-1", service: "b", addresses: ["10.244.0.6"]), path: slicesPath)
        try await waitUntil("created") {
          let s = await state()
          return s?.services.count == 2 && s?.endpointSlices.count == 2
        }
        // Modify.
        try server.put(service("a", port: 8443), path: servicesPath)
        try server.put(
          slice("a-1", service: "a", addresses: ["10.244.0.5", "10.244.0.7"]), path: slicesPath)
        try await waitUntil("modified") {
          let s = await state()
          return s?.services.first?.spec.ports?.first?.port == 8443
            && s?.endpointSlices.first?.endpoints?.count == 2
        }
        // Delete.
        server.delete(path: servicesPath, key: "default/b")
        server.delete(path: slicesPath, key: "default/b-1")
        try await waitUntil("deleted") {
          let s = await state()
          return s?.services.map(\.key) == ["default/a"]
            && s?.endpointSlices.map(\.key) == ["default/a-1"]
        }
        // The node changes too.
        try server.put(node("node-1", ip: "192.168.1.99"), path: nodesPath)
        try await waitUntil("node modified") {
          await state()?.nodes.first?.status?.addresses?.first?.address == "192.168.1.99"
        }

        let snap = try #require(await watcher.snapshot())
        // Initial add + create + modify + delete.
        #expect(snap.serviceChanges == 4)
        #expect(snap.endpointChanges == 4)
        #expect(snap.nodeChanges == 2)
        try await waitUntil("consumer caught up") { received.current.last == snap }
        let generations = received.current.map(\.generation)
        #expect(generations == generations.sorted() && Set(generations).count == generations.count)
      }
    }
  }

  @Test func invalidObjectsAreExcludedAndTheWatchGoesOn() async throws {
    try await withServer { server, client in
      try server.put(service("a"), path: servicesPath)
      try server.put(service("bad", port: 70000), path: servicesPath)
      try server.put(
        slice("bad-1", service: "bad", addresses: ["10.244.0.5"]), path: slicesPath)
      let watcher = ClusterWatcher(
        client: client, nodeName: nil, options: fastOptions, logger: testLogger)
      try await withWatcher(watcher) { _ in
        try await waitUntil("synced") { await watcher.hasSynced() }
        #expect(await watcher.snapshot()?.state.services.map(\.key) == ["default/a"])
        #expect(await watcher.snapshot()?.state.endpointSlices.count == 1)
        #expect(await watcher.snapshot()?.state.nodes.isEmpty == true)
        try server.put(service("bad2", port: -1), path: servicesPath)
        try server.put(service("c"), path: servicesPath)
        try await waitUntil("c") {
          await watcher.snapshot()?.state.services.map(\.key) == ["default/a", "default/c"]
        }
        #expect(server.requests(path: servicesPath, watch: true).count == 1)
        #expect(server.requests(path: nodesPath, watch: false).isEmpty)
      }
    }
  }

  @Test func watcherSurvivesDropsAndRelists() async throws {
    try await withServer { server, client in
      try server.put(service("a"), path: servicesPath)
      try server.put(slice("a-1", service: "a", addresses: ["10.244.0.5"]), path: slicesPath)
      let watcher = ClusterWatcher(
        client: client, nodeName: nil, options: fastOptions, logger: testLogger)
      try await withWatcher(watcher) { _ in
        try await waitUntil("synced and watching") {
          server.openWatches(path: servicesPath) == 1 && server.openWatches(path: slicesPath) == 1
        }
        let before = try #require(await watcher.snapshot())
        server.delete(path: slicesPath, key: "default/a-1", notify: false)
        try server.put(service("z"), path: servicesPath, notify: false)
        server.compact()
        server.dropWatches(path: servicesPath)
        server.dropWatches(path: slicesPath)
        try await waitUntil("relisted state") {
          let s = await watcher.snapshot()?.state
          return s?.services.map(\.key) == ["default/a", "default/z"]
            && s?.endpointSlices.isEmpty == true
        }
        let after = try #require(await watcher.snapshot())
        #expect(after.generation > before.generation)
        #expect(after.serviceChanges == before.serviceChanges + 1)
        #expect(after.endpointChanges == before.endpointChanges + 1)
      }
    }
  }
}
