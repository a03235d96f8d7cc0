import FakeKubeAPI
import Foundation
import KubeModel
import KubeWatch
import NIOSSL
import Testing

@Suite struct KubeClientTests {
  @Test func listCollectsAllPages() async throws {
    try await withServer { server, client in
      for i in 0..<7 { try server.put(service("svc-\(i)"), path: servicesPath) }
      // Excluded by kube-proxy's label selector (evaluated by the server).
      try server.put(
        service("other-proxy", labels: [ProxySelectors.serviceProxyName: "foo"]), path: servicesPath
      )
      try server.put(
        service("headless", labels: [ProxySelectors.headless: ""]), path: servicesPath)
      let rv = server.currentResourceVersion

      let list = try await client.list(.services, pageSize: 3)
      #expect(list.items.map { $0.metadata.name ?? "" } == (0..<7).map { "svc-\($0)" })
      #expect(list.resourceVersion == String(rv))
      #expect(list.pages == 3)
      #expect(list.undecodable.isEmpty)

      let requests = server.requests(path: servicesPath, watch: false)
      #expect(requests.count == 3)
      #expect(requests.allSatisfy { $0.query["limit"] == "3" })
      #expect(
        requests.allSatisfy {
          $0.query["labelSelector"]
            == "!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless"
        })
      #expect(requests[0].query["continue"] == nil)
      #expect(requests[1].query["continue"] != nil && requests[2].query["continue"] != nil)
      #expect(requests[1].query["continue"] != requests[2].query["continue"])
    }
  }

  @Test func selectorsOfSlicesAndNode() async throws {
    try await withServer { server, client in
      try server.put(slice("a-1", service: "a", addresses: ["10.0.0.1"]), path: slicesPath)
      try server.put(
        EndpointSlice(
          metadata: ObjectMeta(
            name: "h-1", namespace: "default",
            labels: [EndpointSlice.serviceNameLabel: "h", ProxySelectors.headless: ""]),
          addressType: "IPv4"), path: slicesPath)
      try server.put(node("node-1"), path: nodesPath)
      try server.put(node("node-2"), path: nodesPath)

      let slices = try await client.list(.endpointSlices)
      #expect(slices.items.map(\.key) == ["default/a-1"])
      let nodes = try await client.list(.node(named: "node-2"))
      #expect(nodes.items.map { $0.metadata.name } == ["node-2"])

      let sliceRequest = try #require(server.requests(path: slicesPath, watch: false).first)
      #expect(sliceRequest.query["labelSelector"] == "!service.kubernetes.io/headless")
      let nodeRequest = try #require(server.requests(path: nodesPath, watch: false).first)
      #expect(nodeRequest.query["fieldSelector"] == "metadata.name=node-2")
    }
  }

  @Test func undecodableItemsDoNotFailTheList() async throws {
    try await withServer { server, client in
      try server.put(service("good"), path: servicesPath)
      try server.putRaw(
        ["metadata": ["name": "bad", "namespace": "default"], "spec": ["ports": "not-a-list"]],
        path: servicesPath)
      let list = try await client.list(.services)
      #expect(list.items.map(\.key) == ["default/good"])
      #expect(list.undecodable.count == 1)
      #expect(list.undecodable.first?.metadata?.name == "bad")
      #expect(list.undecodable.first?.error.contains("spec.ports") == true)
    }
  }

  @Test func watchDecodesEventsSplitAcrossChunks() async throws {
    try await withServer { server, client in
      try server.put(service("a"), path: servicesPath)
      try server.put(service("b"), path: servicesPath)
      let list = try await client.list(.services)
      server.splitLiveEvents = 7
      // Two events that happened after the list are replayed in a single chunk.
      try server.put(service("c"), path: servicesPath)
      server.delete(path: servicesPath, key: "default/a")
      let stream = try await client.watch(
        .services, resourceVersion: list.resourceVersion, timeoutSeconds: 300)
      var iterator = stream.makeAsyncIterator()
      guard case .added(let added)? = try await iterator.next() else {
        Issue.record("expected ADDED")
        return
      }
      #expect(added.metadata.name == "c")
      #expect(added.metadata.resourceVersion == String(Int(list.resourceVersion)! + 1))
      guard case .deleted(let deleted)? = try await iterator.next() else {
        Issue.record("expected DELETED")
        return
      }
      #expect(deleted.metadata.name == "a")
      // Live events arrive in 7-byte chunks.
      try server.put(service("b", port: 8080), path: servicesPath)
      guard case .modified(let modified)? = try await iterator.next() else {
        Issue.record("expected MODIFIED")
        return
      }
      #expect(modified.spec.ports?.first?.port == 8080)
      let bookmarkRV = server.sendBookmark(path: servicesPath)
      #expect(try await iterator.next() == .bookmark(resourceVersion: String(bookmarkRV)))
      server.endWatches(path: servicesPath)
      #expect(try await iterator.next() == nil)

      let request = try #require(server.requests(path: servicesPath, watch: true).first)
      #expect(request.query["resourceVersion"] == list.resourceVersion)
      #expect(request.query["allowWatchBookmarks"] == "true")
      #expect(request.query["timeoutSeconds"] == "300")
      #expect(request.query["labelSelector"] == ProxySelectors.services)
    }
  }

  @Test func droppedWatchThrowsTransportError() async throws {
    try await withServer { server, client in
      let list = try await client.list(.services)
      let stream = try await client.watch(
        .services, resourceVersion: list.resourceVersion, timeoutSeconds: 300)
      try await waitUntil("watch registered") { server.openWatches(path: servicesPath) == 1 }
      server.dropWatches(path: servicesPath)
      let error = await #expect(throws: KubeAPIError.self) {
        for try await _ in stream {}
      }
      #expect(error?.kind == .transport)
    }
  }

  @Test func goneAsHTTPStatus() async throws {
    try await withServer { server, client in
      try server.put(service("a"), path: servicesPath)
      server.compact()
      server.goneMode = .httpStatus
      let error = await #expect(throws: KubeAPIError.self) {
        _ = try await client.watch(.services, resourceVersion: "100", timeoutSeconds: 300)
      }
      #expect(error?.kind == .gone)
    }
  }

  @Test func wrongTokenIsAClearError() async throws {
    let server = try await FakeAPIServer(token: "right")
    let client = try makeClient(server, token: "wrong")
    let error = await #expect(throws: KubeAPIError.self) {
      _ = try await client.list(.services)
    }
    #expect(error?.kind == .unauthorized)
    #expect(error?.description.contains("401 Unauthorized") == true)
    #expect(error?.description.contains("/api/v1/services") == true)
    #expect(server.recordedRequests.first?.authorization == "Bearer wrong")
    try await client.shutdown()
    await server.shutdown()
  }

  @Test func rotatedTokenFileIsReReadAfter401() async throws {
    let dir = try TempDir()
    defer { dir.cleanup() }
    let tokenFile = try dir.write("token", "token-1\n")
    let server = try await FakeAPIServer(token: "token-1")
    let client = try KubeClient(
      config: KubeConfig(server: server.url, tokenFile: tokenFile), logger: testLogger,
      tokenRefreshInterval: .seconds(3600))
    _ = try await client.list(.services)
    // The token rotates: the server now wants the new one, and the file holds it.
    _ = try dir.write("token", "token-2\n")
    server.token = "token-2"
    _ = try await client.list(.services)
    let auth = server.recordedRequests.map { $0.authorization ?? "" }
    #expect(auth == ["Bearer token-1", "Bearer token-1", "Bearer token-2"])
    try await client.shutdown()
    await server.shutdown()
  }

  @Test func tlsWithTheRightCA() async throws {
    let certs = try TestCertificates.shared()
    let server = try await FakeAPIServer(token: "t", tlsConfiguration: try certs.serverTLS())
    try server.put(service("a"), path: servicesPath)
    let client = try makeClient(server, token: "t", ca: try certs.bytes(certs.caCert))
    let list = try await client.list(.services)
    #expect(list.items.count == 1)
    try await client.shutdown()
    await server.shutdown()
  }

  @Test func tlsWithAWrongCAFails() async throws {
    let certs = try TestCertificates.shared()
    let server = try await FakeAPIServer(token: "t", tlsConfiguration: try certs.serverTLS())
    let client = try makeClient(server, token: "t", ca: try certs.bytes(certs.otherCACert))
    let error = await #expect(throws: KubeAPIError.self) {
      _ = try await client.list(.services)
    }
    #expect(error?.kind == .transport)
    #expect(error?.message.contains("TLS") == true, "\(String(describing: error))")
    #expect(server.recordedRequests.isEmpty)
    try await client.shutdown()
    await server.shutdown()
  }

  @Test func tlsWithClientCertificateFromKubeconfigFiles() async throws {
    let certs = try TestCertificates.shared()
    let server = try await FakeAPIServer(
      token: nil, tlsConfiguration: try certs.serverTLS(requireClientCertificate: true))
    let dir = try TempDir()
    defer { dir.cleanup() }
    let path = try dir.write(
      "kubeconfig",
      """
      current-context: c
      clusters:
      - name: k
        cluster:
          server: \(server.url)
          certificate-authority: \(certs.caCert)
      contexts:
      - name: c
        context: {cluster: k, user: node}
      users:
      - name: node
        user:
          client-certificate: \(certs.clientCert)
          client-key: \(certs.clientKey)
      """)
    let client = try KubeClient(config: try KubeConfig.load(kubeconfig: path), logger: testLogger)
    #expect(try await client.list(.services).items.isEmpty)
    try await client.shutdown()

    // Without the client certificate the server refuses the handshake.
    let anonymous = try makeClient(server, token: nil, ca: try certs.bytes(certs.caCert))
    await #expect(throws: KubeAPIError.self) { _ = try await anonymous.list(.services) }
    try await anonymous.shutdown()
    await server.shutdown()
  }

  @Test func insecureSkipTLSVerify() async throws {
    let certs = try TestCertificates.shared()
    let server = try await FakeAPIServer(token: nil, tlsConfiguration: try certs.serverTLS())
    let client = try KubeClient(
      config: KubeConfig(server: server.url, insecureSkipTLSVerify: true), logger: testLogger)
    #expect(try await client.list(.services).items.isEmpty)
    try await client.shutdown()
    await server.shutdown()
  }
}
