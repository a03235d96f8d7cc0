import IPAddr
import KubeModel
import NFTables
import ProxyCore
import Testing

@Suite("Resolver: traffic policies and endpoint conditions")
struct PolicyTests {
  struct Case: Sendable, CustomStringConvertible {
    var name: String
    var type = "NodePort"
    var eTP: String? = nil
    var iTP: String? = nil
    var eps: [Fx.EP]
    var cluster: [String]
    var local: [String]
    var hasAny = true
    var description: String { name }
  }

  static let local = "node-a"
  static let cases: [Case] = [
    Case(
      name: "eTP Cluster, ready local and remote: all endpoints, no local set",
      eps: [Fx.EP(ip: "10.244.1.5", node: local), Fx.EP(ip: "10.244.2.5")],
      cluster: ["10.244.1.5", "10.244.2.5"], local: []),
    Case(
      name: "eTP Local, ready local and remote: cluster for pods, local for external",
      eTP: "Local", eps: [Fx.EP(ip: "10.244.1.5", node: local), Fx.EP(ip: "10.244.2.5")],
      cluster: ["10.244.1.5", "10.244.2.5"], local: ["10.244.1.5"]),
    Case(
      name: "eTP Local, only remote ready: no local endpoints but service has endpoints",
      eTP: "Local", eps: [Fx.EP(ip: "10.244.2.5"), Fx.EP(ip: "10.244.3.5")],
      cluster: ["10.244.2.5", "10.244.3.5"], local: []),
    Case(
      name: "eTP Local, local only terminating: local falls back to serving-terminating",
      eTP: "Local",
      eps: [
        Fx.EP(ip: "10.244.1.5", node: local, ready: false, serving: true, terminating: true),
        Fx.EP(ip: "10.244.2.5"),
      ],
      cluster: ["10.244.2.5"], local: ["10.244.1.5"]),
    Case(
      name: "eTP Local, local ready and local terminating: terminating unused",
      eTP: "Local",
      eps: [
        Fx.EP(ip: "10.244.1.5", node: local),
        Fx.EP(ip: "10.244.1.6", node: local, ready: false, serving: true, terminating: true),
      ],
      cluster: ["10.244.1.5"], local: ["10.244.1.5"]),
    Case(
      name: "iTP Local on a ClusterIP service: only local endpoints, no cluster set",
      type: "ClusterIP", iTP: "Local",
      eps: [Fx.EP(ip: "10.244.1.5", node: local), Fx.EP(ip: "10.244.2.5")],
      cluster: [], local: ["10.244.1.5"]),
    Case(
      name: "iTP Local on a ClusterIP service, no local endpoints: has endpoints elsewhere",
      type: "ClusterIP", iTP: "Local", eps: [Fx.EP(ip: "10.244.2.5")],
      cluster: [], local: []),
    Case(
      name: "iTP Local, eTP Cluster NodePort: cluster set for external, local for internal",
      iTP: "Local", eps: [Fx.EP(ip: "10.244.1.5", node: local), Fx.EP(ip: "10.244.2.5")],
      cluster: ["10.244.1.5", "10.244.2.5"], local: ["10.244.1.5"]),
    Case(
      name: "no ready endpoints: cluster falls back to serving-terminating ones",
      eps: [
        Fx.EP(ip: "10.244.2.5", ready: false, serving: true, terminating: true),
        Fx.EP(ip: "10.244.3.5", ready: false, serving: false, terminating: true),
      ],
      cluster: ["10.244.2.5"], local: []),
    Case(
      name: "ready endpoints exist: terminating ones unused",
      eps: [
        Fx.EP(ip: "10.244.2.5", ready: false, serving: true, terminating: true),
        Fx.EP(ip: "10.244.3.5"),
      ],
      cluster: ["10.244.3.5"], local: []),
    Case(
      name: "not ready and not serving: no endpoints at all",
      eTP: "Local",
      eps: [Fx.EP(ip: "10.244.1.5", node: local, ready: false, serving: false, terminating: true)],
      cluster: [], local: [], hasAny: false),
    Case(
      name: "absent conditions mean ready",
      eps: [Fx.EP(ip: "10.244.2.5", ready: nil)], cluster: ["10.244.2.5"], local: []),
    Case(
      name: "not ready, not terminating: unused",
      eps: [Fx.EP(ip: "10.244.2.5", ready: false, serving: false)], cluster: [], local: [],
      hasAny: false),
  ]

  @Test(arguments: cases)
  func categorize(_ c: Case) throws {
    let svc = Fx.service("web", type: c.type, eTP: c.eTP, iTP: c.iTP)
    let r = Fx.resolve([svc], [Fx.slice("web", c.eps)])
    let sp = try #require(r.servicePorts.first)
    #expect(r.servicePorts.count == 1)
    #expect(Fx.ips(sp.clusterEndpoints) == c.cluster)
    #expect(Fx.ips(sp.localEndpoints) == c.local)
    #expect(sp.hasAnyEndpoints == c.hasAny)
  }
}

@Suite("Resolver: topology")
struct TopologyTests {
  func resolve(_ eps: [Fx.EP], zone: String? = "zone-a") -> ResolvedServicePort? {
    Fx.resolve([Fx.service("web")], [Fx.slice("web", eps)], node: Fx.nodeObject(zone: zone))
      .servicePorts.first
  }

  @Test func zoneHintsNarrowClusterEndpoints() throws {
    let sp = try #require(
      resolve([
        Fx.EP(ip: "10.244.1.5", zones: ["zone-a"]), Fx.EP(ip: "10.244.2.5", zones: ["zone-b"]),
        Fx.EP(ip: "10.244.3.5", zones: ["zone-a"]),
      ]))
    #expect(sp.topologyMode == "PreferSameZone")
    #expect(Fx.ips(sp.clusterEndpoints) == ["10.244.1.5", "10.244.3.5"])
  }

  @Test func oneEndpointWithoutHintsDisablesTopology() throws {
    let sp = try #require(
      resolve([Fx.EP(ip: "10.244.1.5", zones: ["zone-a"]), Fx.EP(ip: "10.244.2.5")]))
    #expect(sp.topologyMode == nil)
    #expect(sp.clusterEndpoints.count == 2)
  }

  @Test func notReadyEndpointsWithoutHintsDoNotMatter() throws {
    let sp = try #require(
      resolve([
        Fx.EP(ip: "10.244.1.5", zones: ["zone-a"]), Fx.EP(ip: "10.244.2.5", zones: ["zone-b"]),
        Fx.EP(ip: "10.244.3.5", ready: false),
      ]))
    #expect(Fx.ips(sp.clusterEndpoints) == ["10.244.1.5"])
  }

  @Test func noHintForThisZoneUsesAll() throws {
    let sp = try #require(
      resolve([Fx.EP(ip: "10.244.1.5", zones: ["zone-b"]), Fx.EP(ip: "10.244.2.5", zones: ["zone-c"])]))
    #expect(sp.topologyMode == nil)
    #expect(sp.clusterEndpoints.count == 2)
  }

  @Test func nodeWithoutZoneLabelIgnoresZoneHints() throws {
    let sp = try #require(
      resolve([Fx.EP(ip: "10.244.1.5", zones: ["zone-a"]), Fx.EP(ip: "10.244.2.5", zones: ["zone-b"])], zone: nil))
    #expect(sp.clusterEndpoints.count == 2)
  }

  @Test func nodeHintsWinOverZoneHints() throws {
    let sp = try #require(
      resolve([
        Fx.EP(ip: "10.244.1.5", zones: ["zone-a"], nodeHints: ["node-a"]),
        Fx.EP(ip: "10.244.1.6", zones: ["zone-a"], nodeHints: ["node-b"]),
      ]))
    #expect(sp.topologyMode == "PreferSameNode")
    #expect(Fx.ips(sp.clusterEndpoints) == ["10.244.1.5"])
  }

  @Test func topologyDoesNotApplyToTerminatingFallback() throws {
    let sp = try #require(
      resolve([
        Fx.EP(ip: "10.244.1.5", ready: false, serving: true, terminating: true, zones: ["zone-b"]),
        Fx.EP(ip: "10.244.2.5", ready: false, serving: true, terminating: true, zones: ["zone-a"]),
      ]))
    #expect(sp.clusterEndpoints.count == 2)
  }
}

@Suite("Resolver: ports, frontends, skipping")
struct FrontendTests {
  @Test func namedTargetPortResolvesPerSlice() throws {
    let svc = Fx.service(
      "web", ports: [ServicePort(name: "http", protocol: "TCP", port: 80, targetPort: .string("web"))])
    let r = Fx.resolve(
      [svc],
      [
        Fx.slice("web", name: "web-1", port: 8080, [Fx.EP(ip: "10.244.1.5")]),
        Fx.slice("web", name: "web-2", port: 9090, [Fx.EP(ip: "10.244.2.5")]),
      ])
    let sp = try #require(r.servicePorts.first)
    #expect(sp.clusterEndpoints.map(\.port) == [8080, 9090])
  }

  @Test func portNameMustMatch() throws {
    let svc = Fx.service(
      "web",
      ports: [
        ServicePort(name: "http", protocol: "TCP", port: 80), ServicePort(name: "admin", protocol: "TCP", port: 81),
      ])
    let r = Fx.resolve([svc], [Fx.slice("web", portName: "http", [Fx.EP(ip: "10.244.1.5")])])
    #expect(r.servicePorts.map(\.portName) == ["admin", "http"])
    #expect(r.servicePorts[0].hasAnyEndpoints == false)
    #expect(r.servicePorts[1].hasAnyEndpoints == true)
  }

  @Test func duplicateEndpointAcrossSlicesCountsOnce() throws {
    let r = Fx.resolve(
      [Fx.service("web")],
      [
        Fx.slice("web", name: "a", [Fx.EP(ip: "10.244.1.5")]),
        Fx.slice("web", name: "b", [Fx.EP(ip: "10.244.1.5")]),
      ])
    #expect(r.servicePorts[0].clusterEndpoints.count == 1)
  }

  @Test func skippedServicesCarryReasons() {
    let r = Fx.resolve(
      [
        Fx.service("headless", clusterIP: "None"),
        Fx.service("ext", type: "ExternalName", clusterIP: ""),
        Fx.service("other", labels: ["service.kubernetes.io/service-proxy-name": "foo"]),
        Fx.service("web"),
      ], [])
    #expect(r.skipped.map(\.key) == ["default/ext", "default/headless", "default/other"])
    #expect(r.skipped[1].reason.contains("headless"))
    #expect(r.skipped[0].reason.contains("ExternalName"))
    #expect(r.skipped[2].reason.contains("service-proxy-name"))
    #expect(r.servicePorts.map(\.serviceKey) == ["default/web"])
  }

  @Test func loadBalancerIngressProxyModeIsIgnored() throws {
    let svc = Fx.service("lb", type: "LoadBalancer") {
      $0.status = ServiceStatus(
        loadBalancer: LoadBalancerStatus(ingress: [
          LoadBalancerIngress(ip: "203.0.113.1"), LoadBalancerIngress(ip: "203.0.113.2", ipMode: "Proxy"),
          LoadBalancerIngress(hostname: "lb.example.com"),
        ]))
      $0.spec.externalIPs = ["198.51.100.1"]
    }
    let sp = try #require(Fx.resolve([svc], []).servicePorts.first)
    #expect(sp.loadBalancerIPs.map(\.description) == ["203.0.113.1"])
    #expect(sp.externalIPs.map(\.description) == ["198.51.100.1"])
    #expect(sp.nodePort == 30080)
  }

  @Test func clusterIPServiceHasNoNodePort() throws {
    let sp = try #require(Fx.resolve([Fx.service("web")], []).servicePorts.first)
    #expect(sp.nodePort == nil)
    #expect(!sp.externallyAccessible)
  }

  @Test func dualStackGivesOnePortPerFamilyWithItsOwnEndpoints() {
    let svc = Fx.service("web") { $0.spec.clusterIPs = ["10.96.0.10", "fd00:10:96::10"] }
    let r = Fx.resolve(
      [svc],
      [
        Fx.slice("web", name: "v4", [Fx.EP(ip: "10.244.1.5")]),
        Fx.slice("web", name: "v6", family: "IPv6", [Fx.EP(ip: "fd00:10:244:1::5")]),
      ])
    #expect(r.servicePorts.map(\.family) == [.ipv4, .ipv6])
    #expect(Fx.ips(r.servicePorts[1].clusterEndpoints) == ["fd00:10:244:1::5"])
    #expect(r.servicePorts[1].clusterIP.description == "fd00:10:96::10")
  }

  @Test func affinityDefaultsToThreeHours() throws {
    let svc = Fx.service("web") { $0.spec.sessionAffinity = "ClientIP" }
    #expect(Fx.resolve([svc], []).servicePorts.first?.affinityTimeout == 10800)
  }

  @Test func nodeIPsComeFromNodeUnlessFlagged() {
    var cfg = Fx.config()
    cfg.nodeIPs = []
    #expect(Fx.resolve([], [], config: cfg).node.ips.map(\.description) == ["192.168.10.11"])
    #expect(Fx.resolve([], []).node.ips.map(\.description) == ["192.168.10.11"])
  }
}
