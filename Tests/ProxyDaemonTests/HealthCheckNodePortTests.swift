import KubeModel
import NIOPosix
import ProxyCore
import ProxyDaemon
import Testing

@Suite struct HealthCheckNodePortTests {
  @Test func servicesNeedingHealthChecks() {
    let state = ClusterState(
      services: [
        localLBService("b", ip: "10.96.0.2", nodePort: 30002, healthCheckNodePort: 32002),
        localLBService("a", ip: "10.96.0.1", nodePort: 30001, healthCheckNodePort: 32001),
        // Cluster policy, ClusterIP, and another proxy's Service: no health check.
        {
          var s = localLBService("c", ip: "10.96.0.3", nodePort: 30003, healthCheckNodePort: 32003)
          s.spec.externalTrafficPolicy = "Cluster"
          return s
        }(),
        clusterIPService("d", ip: "10.96.0.4"),
        {
          var s = localLBService("e", ip: "10.96.0.5", nodePort: 30005, healthCheckNodePort: 32005)
          s.metadata.labels = ["service.kubernetes.io/service-proxy-name": "other"]
          return s
        }(),
      ],
      endpointSlices: [
        // Two local ready addresses (each serving two ports), one local not ready, one remote.
        slice(
          for: "a",
          [
            ("10.244.1.1", nodeName, true), ("10.244.1.2", nodeName, true),
            ("10.244.1.3", nodeName, false), ("10.244.2.1", "node-b", true),
          ])
      ])
    let services = HealthCheckService.services(
      state: state, resolved: Resolver.resolve(state, config: testConfig))
    #expect(
      services == [
        HealthCheckService(namespace: "default", name: "a", port: 32001, localEndpoints: 2),
        HealthCheckService(namespace: "default", name: "b", port: 32002, localEndpoints: 0),
      ])
  }

  @Test func answersByLocalEndpointsAndProxyHealth() async throws {
    let clock = ManualClock()
    let health = ProxyHealth(timeout: .seconds(60), clock: clock)
    let ports = HealthCheckNodePorts(
      bindHost: "127.0.0.1", health: health, group: MultiThreadedEventLoopGroup.singleton,
      logger: quietLogger)
    let p1 = try await freePort()
    let p2 = try await freePort()

    await ports.update([
      HealthCheckService(namespace: "ns", name: "one", port: p1, localEndpoints: 2),
      HealthCheckService(namespace: "ns", name: "two", port: p2, localEndpoints: 0),
    ])
    #expect(await ports.openPorts == [p1, p2].sorted())
    var r = try await get(port: p1, "/")
    #expect(r.status == 200)
    #expect(
      r.body == """
        {
        \t"service": {
        \t\t"namespace": "ns",
        \t\t"name": "one"
        \t},
        \t"localEndpoints": 2,
        \t"serviceProxyHealthy": true
        }
        """)
    #expect(try await get(port: p2, "/healthz").status == 503)

    // A change stuck past the timeout makes every port report 503.
    health.queued(at: clock.now)
    clock.advance(by: .seconds(61))
    r = try await get(port: p1, "/")
    #expect(r.status == 503)
    #expect(r.json?["serviceProxyHealthy"] as? Bool == false)
    #expect(r.json?["localEndpoints"] as? Int == 2)
    health.updated(pendingSince: nil)
    #expect(try await get(port: p1, "/").status == 200)

    // Counts update in place; a removed service's port closes.
    await ports.update([
      HealthCheckService(namespace: "ns", name: "two", port: p2, localEndpoints: 1)
    ])
    #expect(await ports.openPorts == [p2])
    #expect(try await get(port: p2, "/").status == 200)
    #expect(await connectionRefused(port: p1))

    await ports.closeAll()
    #expect(await ports.openPorts.isEmpty)
    #expect(await connectionRefused(port: p2))
  }

  @Test func aPortInUseIsRetriedOnTheNextUpdate() async throws {
    let health = ProxyHealth(timeout: .seconds(60), clock: ManualClock())
    let ports = HealthCheckNodePorts(
      bindHost: "127.0.0.1", health: health, group: MultiThreadedEventLoopGroup.singleton,
      logger: quietLogger)
    let blocker = try await HTTPServer.start(
      at: BindAddress(host: "127.0.0.1", port: 0), group: MultiThreadedEventLoopGroup.singleton
    ) { _ in HTTPResponse(status: .ok, body: "blocker") }
    let port = blocker.port
    let svc = HealthCheckService(namespace: "ns", name: "x", port: port, localEndpoints: 1)
    await ports.update([svc])
    #expect(await ports.openPorts.isEmpty)
    await blocker.close()
    await ports.update([svc])
    #expect(await ports.openPorts == [port])
    #expect(try await get(port: port, "/").status == 200)
    await ports.closeAll()
  }
}
