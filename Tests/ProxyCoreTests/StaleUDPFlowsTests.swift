import IPAddr
import KubeModel
import NFTables
import ProxyCore
import Testing

@Suite("StaleUDPFlows: which UDP conntrack entries a sync leaves stale")
struct StaleUDPFlowsTests {
  typealias HP = StaleUDPFilter.HostPort

  static func hp(_ ip: String, _ port: UInt16) -> HP { HP(IPAddress(ip)!, port) }

  /// A UDP "dns" Service on port 53 (NodePort 30053 unless ClusterIP).
  static func dns(
    _ name: String = "dns", type: String = "ClusterIP", clusterIP: String = "10.96.0.10",
    externalIPs: [String]? = nil, lbIP: String? = nil, iTP: String? = nil,
    extraPorts: [ServicePort] = []
  ) -> Service {
    Fx.service(
      name, type: type, clusterIP: clusterIP,
      ports: [
        ServicePort(
          name: "dns", protocol: "UDP", port: 53, targetPort: .int(5353),
          nodePort: type == "ClusterIP" ? nil : 30053)
      ] + extraPorts, iTP: iTP
    ) { s in
      s.spec.externalIPs = externalIPs
      if let lbIP {
        s.status = ServiceStatus(
          loadBalancer: LoadBalancerStatus(ingress: [LoadBalancerIngress(ip: lbIP)]))
      }
    }
  }

  static func udpSlice(
    _ eps: [Fx.EP], service: String = "dns", name: String? = nil, portName: String = "dns",
    port: Int = 5353
  ) -> EndpointSlice {
    var s = Fx.slice(service, name: name, portName: portName, port: port, eps)
    s.ports = [EndpointPort(name: portName, protocol: "UDP", port: port)]
    return s
  }

  @Test func servingEndpointsAreKeptForUDPOnly() {
    let r = Fx.resolve(
      [Self.dns(), Fx.service("web", clusterIP: "10.96.0.20")],
      [
        Self.udpSlice([
          Fx.EP(ip: "10.244.1.5", node: Fx.node),
          Fx.EP(ip: "10.244.2.5", ready: false, serving: true, terminating: true),
          Fx.EP(ip: "10.244.3.5", ready: false, serving: false, terminating: true),
        ]),
        Fx.slice("web", [Fx.EP(ip: "10.244.1.9")]),
      ])
    let udp = r.servicePorts.first { $0.name == "dns" }!
    #expect(Fx.ips(udp.servingEndpoints) == ["10.244.1.5", "10.244.2.5"])
    #expect(Fx.ips(udp.clusterEndpoints) == ["10.244.1.5"])
    let tcp = r.servicePorts.first { $0.name == "web" }!
    #expect(tcp.servingEndpoints.isEmpty)
  }

  @Test func withoutPreviousStateEveryUDPFrontendIsChecked() {
    let r = Fx.resolve(
      [
        Self.dns(
          type: "LoadBalancer", externalIPs: ["198.51.100.7"], lbIP: "203.0.113.9"),
        Fx.service("web", type: "NodePort", clusterIP: "10.96.0.20"),
      ],
      [Self.udpSlice([Fx.EP(ip: "10.244.1.5"), Fx.EP(ip: "10.244.2.5")])])
    let f = StaleUDPFlows.filter(previous: nil, current: r)
    let keep: Set<HP> = [Self.hp("10.244.1.5", 5353), Self.hp("10.244.2.5", 5353)]
    #expect(
      f.frontends == [
        Self.hp("10.96.0.10", 53): keep, Self.hp("198.51.100.7", 53): keep,
        Self.hp("203.0.113.9", 53): keep,
      ])
    #expect(f.nodePorts == [StaleUDPFilter.NodePort(.ipv4, 30053): keep])
    #expect(f.families == Set<IPAddress.Family>([.ipv4]))
    #expect(f.count == 4)
  }

  @Test func aFrontendWithoutEndpointsIsCheckedWithNothingToKeep() {
    let f = StaleUDPFlows.filter(previous: nil, current: Fx.resolve([Self.dns()], []))
    #expect(f.frontends == [Self.hp("10.96.0.10", 53): []])
    #expect(
      f.isStale(
        originalDestination: Self.hp("10.96.0.10", 53), replySource: Self.hp("10.96.0.10", 53)))
  }

  @Test func decisionPerFlow() {
    let f = StaleUDPFilter(
      frontends: [Self.hp("10.96.0.10", 53): [Self.hp("10.244.1.5", 5353)]],
      nodePorts: [StaleUDPFilter.NodePort(.ipv4, 30053): [Self.hp("10.244.1.5", 5353)]])
    func stale(_ dst: HP, _ reply: HP) -> Bool {
      f.isStale(originalDestination: dst, replySource: reply)
    }
    let vip = Self.hp("10.96.0.10", 53)
    #expect(!stale(vip, Self.hp("10.244.1.5", 5353)), "serving endpoint")
    #expect(stale(vip, Self.hp("10.244.2.5", 5353)), "removed endpoint")
    #expect(stale(vip, Self.hp("10.244.1.5", 6000)), "same pod, other port")
    #expect(stale(vip, vip), "never DNATed (cached while the service had no endpoints)")
    #expect(
      !stale(Self.hp("10.96.0.10", 54), Self.hp("10.244.2.5", 5353)), "other port of the address")
    #expect(!stale(Self.hp("10.96.0.11", 53), Self.hp("10.244.2.5", 5353)), "other address")

    let nodePort = Self.hp("192.168.10.11", 30053)
    #expect(!stale(nodePort, Self.hp("10.244.1.5", 5353)))
    #expect(stale(nodePort, Self.hp("10.244.2.5", 5353)))
    #expect(stale(Self.hp("192.168.10.12", 30053), Self.hp("10.244.2.5", 5353)), "any node address")
    #expect(!stale(nodePort, nodePort), "not DNATed: someone else's flow on the port number")
    #expect(!stale(Self.hp("fd00::1", 30053), Self.hp("fd00:244::5", 5353)), "other family")
  }

  @Test func withoutChangesNothingIsChecked() {
    let state = Fx.resolve(
      [Self.dns(type: "NodePort")], [Self.udpSlice([Fx.EP(ip: "10.244.1.5")])])
    #expect(StaleUDPFlows.filter(previous: state, current: state).isEmpty)
  }

  @Test func removingAnEndpointChecksOnlyThatServicesFrontends() {
    let before = Fx.resolve(
      [Self.dns(type: "NodePort"), Self.dns("other", clusterIP: "10.96.0.11")],
      [
        Self.udpSlice([Fx.EP(ip: "10.244.1.5"), Fx.EP(ip: "10.244.2.5")]),
        Self.udpSlice([Fx.EP(ip: "10.244.7.7")], service: "other"),
      ])
    let after = Fx.resolve(
      [Self.dns(type: "NodePort"), Self.dns("other", clusterIP: "10.96.0.11")],
      [
        Self.udpSlice([Fx.EP(ip: "10.244.1.5")]),
        Self.udpSlice([Fx.EP(ip: "10.244.7.7")], service: "other"),
      ])
    let f = StaleUDPFlows.filter(previous: before, current: after)
    let keep: Set<HP> = [Self.hp("10.244.1.5", 5353)]
    #expect(f.frontends == [Self.hp("10.96.0.10", 53): keep])
    #expect(f.nodePorts == [StaleUDPFilter.NodePort(.ipv4, 30053): keep])
    #expect(
      f.isStale(
        originalDestination: Self.hp("10.96.0.10", 53), replySource: Self.hp("10.244.2.5", 5353)))
    #expect(
      !f.isStale(
        originalDestination: Self.hp("10.96.0.10", 53), replySource: Self.hp("10.244.1.5", 5353)))
  }

  @Test func gainingTheFirstEndpointChecksTheFrontend() {
    let before = Fx.resolve([Self.dns()], [])
    let after = Fx.resolve([Self.dns()], [Self.udpSlice([Fx.EP(ip: "10.244.1.5")])])
    let f = StaleUDPFlows.filter(previous: before, current: after)
    #expect(f.frontends == [Self.hp("10.96.0.10", 53): [Self.hp("10.244.1.5", 5353)]])
    // Entries cached while the service had no endpoints were never DNATed.
    #expect(
      f.isStale(
        originalDestination: Self.hp("10.96.0.10", 53), replySource: Self.hp("10.96.0.10", 53)))
  }

  @Test func aRemovedServiceLosesAllItsFlows() {
    let before = Fx.resolve(
      [Self.dns(type: "NodePort")], [Self.udpSlice([Fx.EP(ip: "10.244.1.5")])])
    let after = Fx.resolve([], [])
    let f = StaleUDPFlows.filter(previous: before, current: after)
    #expect(f.frontends == [Self.hp("10.96.0.10", 53): []])
    #expect(f.nodePorts == [StaleUDPFilter.NodePort(.ipv4, 30053): []])
    #expect(
      f.isStale(
        originalDestination: Self.hp("10.96.0.10", 53), replySource: Self.hp("10.244.1.5", 5353)))
  }

  @Test func terminatingButServingEndpointsKeepTheirFlows() {
    let ready = Fx.resolve(
      [Self.dns()], [Self.udpSlice([Fx.EP(ip: "10.244.1.5"), Fx.EP(ip: "10.244.2.5")])])
    let terminating = Fx.resolve(
      [Self.dns()],
      [
        Self.udpSlice([
          Fx.EP(ip: "10.244.1.5"),
          Fx.EP(ip: "10.244.2.5", ready: false, serving: true, terminating: true),
        ])
      ])
    let gone = Fx.resolve(
      [Self.dns()],
      [
        Self.udpSlice([
          Fx.EP(ip: "10.244.1.5"),
          Fx.EP(ip: "10.244.2.5", ready: false, serving: false, terminating: true),
        ])
      ])
    // The rules stop sending new flows to 10.244.2.5, but its existing flows may finish.
    #expect(Fx.ips(terminating.servicePorts[0].clusterEndpoints) == ["10.244.1.5"])
    #expect(StaleUDPFlows.filter(previous: ready, current: terminating).isEmpty)
    let f = StaleUDPFlows.filter(previous: terminating, current: gone)
    #expect(
      f.isStale(
        originalDestination: Self.hp("10.96.0.10", 53), replySource: Self.hp("10.244.2.5", 5353)))
  }

  @Test func trafficPolicyAndTopologyDoNotMakeFlowsStale() {
    // iTP Local: this node sends only to its own endpoint, but the remote one still serves.
    let r = Fx.resolve(
      [Self.dns(iTP: "Local")],
      [Self.udpSlice([Fx.EP(ip: "10.244.1.5", node: Fx.node), Fx.EP(ip: "10.244.2.5")])])
    #expect(Fx.ips(r.servicePorts[0].localEndpoints) == ["10.244.1.5"])
    let f = StaleUDPFlows.filter(previous: nil, current: r)
    #expect(
      !f.isStale(
        originalDestination: Self.hp("10.96.0.10", 53), replySource: Self.hp("10.244.2.5", 5353)))
  }

  @Test func portsOfOneAddressAreSeparateFrontends() {
    let svc = Self.dns(extraPorts: [
      ServicePort(name: "alt", protocol: "UDP", port: 54, targetPort: .int(6000)),
      ServicePort(name: "tcp", protocol: "TCP", port: 53, targetPort: .int(5353)),
    ])
    let r = Fx.resolve(
      [svc],
      [
        Self.udpSlice([Fx.EP(ip: "10.244.1.5")], name: "dns-a"),
        Self.udpSlice([Fx.EP(ip: "10.244.2.5")], name: "dns-b", portName: "alt", port: 6000),
      ])
    let f = StaleUDPFlows.filter(previous: nil, current: r)
    #expect(
      f.frontends == [
        Self.hp("10.96.0.10", 53): [Self.hp("10.244.1.5", 5353)],
        Self.hp("10.96.0.10", 54): [Self.hp("10.244.2.5", 6000)],
      ])
  }

  @Test func dualStackFrontendsBelongToTheirFamily() {
    let svc = Fx.service(
      "dns", type: "NodePort", clusterIP: "10.96.0.10",
      ports: [
        ServicePort(name: "dns", protocol: "UDP", port: 53, targetPort: .int(5353), nodePort: 30053)
      ]
    ) { s in s.spec.clusterIPs = ["10.96.0.10", "fd00:96::10"] }
    let r = Fx.resolve(
      [svc],
      [
        Self.udpSlice([Fx.EP(ip: "10.244.1.5")]),
        {
          var s = Self.udpSlice([Fx.EP(ip: "fd00:244::5")], name: "dns-v6")
          s.addressType = "IPv6"
          return s
        }(),
      ])
    let f = StaleUDPFlows.filter(previous: nil, current: r)
    #expect(f.families == Set<IPAddress.Family>([.ipv4, .ipv6]))
    #expect(f.frontends[Self.hp("fd00:96::10", 53)] == [Self.hp("fd00:244::5", 5353)])
    #expect(f.nodePorts[StaleUDPFilter.NodePort(.ipv6, 30053)] == [Self.hp("fd00:244::5", 5353)])
    #expect(f.nodePorts[StaleUDPFilter.NodePort(.ipv4, 30053)] == [Self.hp("10.244.1.5", 5353)])
  }
}
