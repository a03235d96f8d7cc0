import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Real packets through the rules `nftproxy run --once` programs into a node namespace. Every
/// test builds its own topology (see `Topology`), programs the node and sends TCP and UDP from
/// pods, from the node itself and from an external client. Servers name themselves and the
/// source address they saw, so each reply tells which endpoint answered and whether the
/// connection was masqueraded.
@Suite(.serialized, .enabled(if: KernelTests.enabled))
struct DataplaneTests {
  /// Both TCP and UDP on the same port number.
  static let tcpUDP80 = [ServicePort(l4: .tcp, port: 80), ServicePort(l4: .udp, port: 80)]

  // MARK: ClusterIP

  @Test func clusterIPFromPodNodeAndHairpin() async throws {
    let t = try Topology()
    defer { t.teardown() }
    let (a1, a2, b1) = (t.pod("a1"), t.pod("a2"), t.pod("b1"))
    try await t.program([
      ServiceSpec(
        name: "web", clusterIPs: ["10.96.0.10"], ports: Self.tcpUDP80,
        endpoints: [Endpoint(pod: a1), Endpoint(pod: b1)]),
      ServiceSpec(
        name: "self", clusterIPs: ["10.96.0.11"], ports: Self.tcpUDP80,
        endpoints: [Endpoint(pod: a1)]),
    ])
    for l4 in [L4.tcp, .udp] {
      // From a pod: not masqueraded, so the server sees the pod's own address; local and remote
      // endpoints both answer.
      let fromPod = repeatRequests(24) {
        request(l4, from: t.namespace(of: a2), to: "10.96.0.10", port: 80)
      }
      for r in fromPod {
        expectServed(r, by: [a1, b1], sourceIn: [a2.ipv4], "\(l4) pod a2 -> ClusterIP")
      }
      #expect(
        Set(fromPod.compactMap(\.pod)) == ["a1", "b1"],
        "\(l4): both endpoints answer: \(tally(fromPod))")

      // From the node itself: masqueraded (the source is outside the pod network).
      let fromNode = repeatRequests(8) { request(l4, from: t.node, to: "10.96.0.10", port: 80) }
      for r in fromNode {
        expectServed(r, by: [a1, b1], sourceIn: Topology.nodeAddresses, "\(l4) node -> ClusterIP")
      }

      // Hairpin: a1 reaching itself through its Service sees the node's address, not its own.
      let hairpin = request(l4, from: t.namespace(of: a1), to: "10.96.0.11", port: 80)
      expectServed(
        hairpin, by: [a1], sourceIn: ["10.244.1.1"], "\(l4) hairpin a1 -> ClusterIP -> a1")
    }
  }

  // MARK: NodePort, LoadBalancer IP, externalIP

  @Test func externalFrontendsWithClusterPolicyAreMasqueraded() async throws {
    let t = try Topology()
    defer { t.teardown() }
    let (a1, a2, b1) = (t.pod("a1"), t.pod("a2"), t.pod("b1"))
    try await t.program([
      ServiceSpec(
        name: "shop", type: "LoadBalancer", clusterIPs: ["10.96.0.20"],
        ports: [
          ServicePort(l4: .tcp, port: 80, nodePort: 30080),
          ServicePort(l4: .udp, port: 80, nodePort: 30081),
        ],
        externalTrafficPolicy: "Cluster", loadBalancerIPs: ["203.0.113.10"],
        externalIPs: ["198.51.100.10"],
        endpoints: [Endpoint(pod: a1), Endpoint(pod: b1)])
    ])
    let frontends: [(String, String, UInt16, UInt16)] = [
      ("NodePort", Topology.nodeIPv4, 30080, 30081),
      ("LoadBalancer IP", "203.0.113.10", 80, 80),
      ("externalIP", "198.51.100.10", 80, 80),
    ]
    for (what, ip, tcpPort, udpPort) in frontends {
      for (l4, port) in [(L4.tcp, tcpPort), (.udp, udpPort)] {
        let external = repeatRequests(6) { request(l4, from: t.client, to: ip, port: port) }
        for r in external {
          expectServed(
            r, by: [a1, b1], sourceIn: Topology.nodeAddresses,
            "\(l4) client -> \(what) (eTP=Cluster)")
        }
        let fromPod = request(l4, from: t.namespace(of: a2), to: ip, port: port)
        expectServed(fromPod, by: [a1, b1], "\(l4) pod a2 -> \(what)")
        let fromNode = request(l4, from: t.node, to: ip, port: port)
        expectServed(
          fromNode, by: [a1, b1], sourceIn: Topology.nodeAddresses, "\(l4) node -> \(what)")
      }
    }
  }

  @Test func externalFrontendsWithLocalPolicyKeepClientSource() async throws {
    let t = try Topology()
    defer { t.teardown() }
    let (a1, a2, a3, b1) = (t.pod("a1"), t.pod("a2"), t.pod("a3"), t.pod("b1"))
    try await t.program([
      ServiceSpec(
        name: "portal", type: "LoadBalancer", clusterIPs: ["10.96.0.30"],
        ports: [
          ServicePort(l4: .tcp, port: 80, nodePort: 30090),
          ServicePort(l4: .udp, port: 80, nodePort: 30091),
        ],
        externalTrafficPolicy: "Local", loadBalancerIPs: ["203.0.113.11"],
        externalIPs: ["198.51.100.11"],
        endpoints: [Endpoint(pod: a1), Endpoint(pod: a2), Endpoint(pod: b1)])
    ])
    let frontends: [(String, String, UInt16, UInt16)] = [
      ("NodePort", Topology.nodeIPv4, 30090, 30091),
      ("LoadBalancer IP", "203.0.113.11", 80, 80),
      ("externalIP", "198.51.100.11", 80, 80),
    ]
    for (what, ip, tcpPort, udpPort) in frontends {
      for (l4, port) in [(L4.tcp, tcpPort), (.udp, udpPort)] {
        // External clients reach only this node's endpoints and keep their address.
        let external = repeatRequests(10) { request(l4, from: t.client, to: ip, port: port) }
        for r in external {
          expectServed(
            r, by: [a1, a2], sourceIn: [Topology.clientIPv4], "\(l4) client -> \(what) (eTP=Local)")
        }
        // Pods and the node are short-circuited to every endpoint.
        let fromPod = request(l4, from: t.namespace(of: a3), to: ip, port: port)
        expectServed(fromPod, by: [a1, a2, b1], "\(l4) pod a3 -> \(what) (eTP=Local)")
        let fromNode = request(l4, from: t.node, to: ip, port: port)
        expectServed(fromNode, by: [a1, a2, b1], "\(l4) node -> \(what) (eTP=Local)")
      }
    }
  }

  @Test func externalLocalPolicyWithoutLocalEndpoints() async throws {
    let t = try Topology()
    defer { t.teardown() }
    let (a1, b1, b2) = (t.pod("a1"), t.pod("b1"), t.pod("b2"))
    try await t.program([
      ServiceSpec(
        name: "remote-only", type: "LoadBalancer", clusterIPs: ["10.96.0.40"],
        ports: [
          ServicePort(l4: .tcp, port: 80, nodePort: 30100),
          ServicePort(l4: .udp, port: 80, nodePort: 30101),
        ],
        externalTrafficPolicy: "Local", loadBalancerIPs: ["203.0.113.12"],
        endpoints: [Endpoint(pod: b1), Endpoint(pod: b2)])
    ])
    // External traffic has no local endpoint to go to: dropped, not rejected.
    expectOutcome(
      request(.tcp, from: t.client, to: Topology.nodeIPv4, port: 30100), .timeout,
      "client -> NodePort")
    expectOutcome(
      request(.tcp, from: t.client, to: "203.0.113.12", port: 80), .timeout, "client -> LB IP")
    expectOutcome(
      request(.udp, from: t.client, to: Topology.nodeIPv4, port: 30101), .timeout,
      "udp client -> NodePort")
    // Pods and the node itself are short-circuited to the remote endpoints.
    for (l4, nodePort) in [(L4.tcp, UInt16(30100)), (.udp, 30101)] {
      expectServed(
        request(l4, from: t.namespace(of: a1), to: Topology.nodeIPv4, port: nodePort),
        by: [b1, b2],
        "\(l4) pod -> NodePort")
      expectServed(
        request(l4, from: t.namespace(of: a1), to: "203.0.113.12", port: 80), by: [b1, b2],
        "\(l4) pod -> LB IP")
      expectServed(
        request(l4, from: t.node, to: Topology.nodeIPv4, port: nodePort), by: [b1, b2],
        "\(l4) node -> NodePort")
      // The ClusterIP is not subject to the external policy, even from outside.
      expectServed(
        request(l4, from: t.client, to: "10.96.0.40", port: 80), by: [b1, b2],
        "\(l4) client -> ClusterIP")
    }
  }

  @Test func internalTrafficPolicyLocal() async throws {
    let t = try Topology()
    defer { t.teardown() }
    let (a1, a2, b1, b2) = (t.pod("a1"), t.pod("a2"), t.pod("b1"), t.pod("b2"))
    try await t.program([
      ServiceSpec(
        name: "node-cache", clusterIPs: ["10.96.0.50"], ports: Self.tcpUDP80,
        internalTrafficPolicy: "Local",
        endpoints: [Endpoint(pod: a1), Endpoint(pod: b1), Endpoint(pod: b2)]),
      ServiceSpec(
        name: "elsewhere", clusterIPs: ["10.96.0.51"], ports: Self.tcpUDP80,
        internalTrafficPolicy: "Local",
        endpoints: [Endpoint(pod: b1), Endpoint(pod: b2)]),
    ])
    for l4 in [L4.tcp, .udp] {
      for r in repeatRequests(
        12, { request(l4, from: t.namespace(of: a2), to: "10.96.0.50", port: 80) })
      {
        expectServed(r, by: [a1], sourceIn: [a2.ipv4], "\(l4) pod -> iTP=Local ClusterIP")
      }
      for r in repeatRequests(4, { request(l4, from: t.node, to: "10.96.0.50", port: 80) }) {
        expectServed(r, by: [a1], "\(l4) node -> iTP=Local ClusterIP")
      }
    }
    // No endpoint on this node: dropped.
    expectOutcome(
      request(.tcp, from: t.namespace(of: a2), to: "10.96.0.51", port: 80), .timeout,
      "pod -> iTP=Local ClusterIP without local endpoints")
  }

  // MARK: Endpoint selection

  @Test func terminatingEndpointFallback() async throws {
    let t = try Topology()
    defer { t.teardown() }
    let (a1, a3, b1, b2) = (t.pod("a1"), t.pod("a3"), t.pod("b1"), t.pod("b2"))
    try await t.program([
      // No endpoint is ready: serving+terminating ones are used, non-serving ones are not.
      ServiceSpec(
        name: "rolling", clusterIPs: ["10.96.0.60"], ports: Self.tcpUDP80,
        endpoints: [.terminating(a1), .terminating(b1), .terminating(b2, serving: false)]),
      // A ready endpoint exists: the terminating one gets nothing.
      ServiceSpec(
        name: "steady", clusterIPs: ["10.96.0.61"], ports: Self.tcpUDP80,
        endpoints: [.terminating(a1), Endpoint(pod: b1)]),
    ])
    for l4 in [L4.tcp, .udp] {
      let rolling = repeatRequests(24) {
        request(l4, from: t.namespace(of: a3), to: "10.96.0.60", port: 80)
      }
      for r in rolling { expectServed(r, by: [a1, b1], "\(l4) all terminating") }
      #expect(Set(rolling.compactMap(\.pod)) == ["a1", "b1"], "\(l4): \(tally(rolling))")
      for r in repeatRequests(
        12, { request(l4, from: t.namespace(of: a3), to: "10.96.0.61", port: 80) })
      {
        expectServed(r, by: [b1], "\(l4) ready endpoint preferred")
      }
    }
  }

  @Test func topologyHintsKeepTrafficInZone() async throws {
    let t = try Topology()
    defer { t.teardown() }
    let (a1, a2, b1, b2, b3) = (t.pod("a1"), t.pod("a2"), t.pod("b1"), t.pod("b2"), t.pod("b3"))
    func hinted(_ pod: Pod, _ zone: String) -> Endpoint { Endpoint(pod: pod, zoneHints: [zone]) }
    try await t.program([
      // node-a is in zone-a: a1 and b1 (lent to zone-a) are this zone's endpoints.
      ServiceSpec(
        name: "catalog", clusterIPs: ["10.96.0.70"], ports: Self.tcpUDP80, topologyAuto: true,
        endpoints: [
          hinted(a1, "zone-a"), hinted(b1, "zone-a"), hinted(b2, "zone-b"), hinted(b3, "zone-b"),
        ]),
      // One ready endpoint without hints: hints are ignored, every endpoint is used.
      ServiceSpec(
        name: "search", clusterIPs: ["10.96.0.71"], ports: Self.tcpUDP80, topologyAuto: true,
        endpoints: [hinted(a1, "zone-a"), hinted(b2, "zone-b"), Endpoint(pod: b3)]),
    ])
    for l4 in [L4.tcp, .udp] {
      let hintedReplies = repeatRequests(32) {
        request(l4, from: t.namespace(of: a2), to: "10.96.0.70", port: 80)
      }
      for r in hintedReplies { expectServed(r, by: [a1, b1], "\(l4) zone-a hints") }
      #expect(
        Set(hintedReplies.compactMap(\.pod)) == ["a1", "b1"], "\(l4): \(tally(hintedReplies))")
    }
    let unhinted = repeatRequests(36) {
      request(.tcp, from: t.namespace(of: a2), to: "10.96.0.71", port: 80)
    }
    for r in unhinted { expectServed(r, by: [a1, b2, b3], "incomplete hints") }
    #expect(
      Set(unhinted.compactMap(\.pod)) == ["a1", "b2", "b3"], "incomplete hints: \(tally(unhinted))")
  }

  @Test func sessionAffinityClientIP() async throws {
    let t = try Topology()
    defer { t.teardown() }
    let endpoints = ["a1", "a2", "b1", "b2"].map { t.pod($0) }
    try await t.program([
      ServiceSpec(
        name: "cart", type: "NodePort", clusterIPs: ["10.96.0.80"],
        ports: [ServicePort(l4: .tcp, port: 80, nodePort: 30110)], externalTrafficPolicy: "Cluster",
        clientIPAffinity: true, endpoints: endpoints.map { Endpoint(pod: $0) })
    ])
    // One client: every connection lands on the same endpoint, via ClusterIP and NodePort.
    for (what, ip, port) in [
      ("ClusterIP", "10.96.0.80", UInt16(80)), ("NodePort", Topology.nodeIPv4, 30110),
    ] {
      let replies = repeatRequests(12) {
        request(.tcp, from: t.client, source: Topology.clientIPv4, to: ip, port: port)
      }
      for r in replies { expectServed(r, by: endpoints, "one client -> \(what)") }
      #expect(Set(replies.compactMap(\.pod)).count == 1, "one client -> \(what): \(tally(replies))")
    }
    // Many clients: each sticks to one endpoint, and together they spread.
    var chosen: [String: String] = [:]
    for source in Topology.extraClientIPv4 {
      let replies = repeatRequests(3) {
        request(.tcp, from: t.client, source: source, to: "10.96.0.80", port: 80)
      }
      for r in replies { expectServed(r, by: endpoints, "client \(source)") }
      let pods = Set(replies.compactMap(\.pod))
      #expect(pods.count == 1, "client \(source) moved between endpoints: \(tally(replies))")
      chosen[source] = pods.first
    }
    #expect(Set(chosen.values).count >= 2, "16 clients all went to one endpoint: \(chosen)")
  }

  @Test func loadSpreadsEvenly() async throws {
    let t = try Topology()
    defer { t.teardown() }
    let endpoints = ["a1", "a2", "b1", "b2"].map { t.pod($0) }
    try await t.program([
      ServiceSpec(
        name: "spread", clusterIPs: ["10.96.0.90"], ports: [ServicePort(l4: .tcp, port: 80)],
        endpoints: endpoints.map { Endpoint(pod: $0) })
    ])
    let replies = repeatRequests(400) {
      request(.tcp, from: t.namespace(of: t.pod("a4")), to: "10.96.0.90", port: 80)
    }
    let counts = tally(replies)
    #expect(counts.values.reduce(0, +) == 400, "every connection answered: \(counts)")
    for pod in endpoints {
      // Expected 100 each (binomial sd ~8.7); 50...150 fails by chance with probability < 1e-7.
      #expect((50...150).contains(counts[pod.name, default: 0]), "\(pod.name): \(counts)")
    }
  }

  // MARK: Rejects and drops

  @Test func rejectsAndDrops() async throws {
    let t = try Topology()
    defer { t.teardown() }
    let (a1, a2) = (t.pod("a1"), t.pod("a2"))
    try await t.program([
      ServiceSpec(
        name: "empty", type: "NodePort", clusterIPs: ["10.96.0.100"],
        ports: [
          ServicePort(l4: .tcp, port: 80, nodePort: 30120),
          ServicePort(l4: .udp, port: 80, nodePort: 30121),
        ],
        externalTrafficPolicy: "Cluster", endpoints: []),
      ServiceSpec(
        name: "one-port", clusterIPs: ["10.96.0.101"], ports: Self.tcpUDP80,
        endpoints: [Endpoint(pod: a1)]),
    ])
    let pod = t.namespace(of: a2)
    for l4 in [L4.tcp, .udp] {
      // No endpoints: rejected at once, from a pod, from outside, from the node.
      expectOutcome(
        request(l4, from: pod, to: "10.96.0.100", port: 80), .refused,
        "\(l4) pod -> ClusterIP, no endpoints")
      expectOutcome(
        request(l4, from: t.node, to: "10.96.0.100", port: 80), .refused,
        "\(l4) node -> ClusterIP, no endpoints")
      expectOutcome(
        request(l4, from: t.client, to: Topology.nodeIPv4, port: l4 == .tcp ? 30120 : 30121),
        .refused,
        "\(l4) client -> NodePort, no endpoints")
      // A port the ClusterIP does not serve: rejected.
      expectOutcome(
        request(l4, from: pod, to: "10.96.0.101", port: 81), .refused, "\(l4) pod -> unknown port")
      expectOutcome(
        request(l4, from: t.client, to: "10.96.0.101", port: 81), .refused,
        "\(l4) client -> unknown port")
      // The served port still works.
      expectServed(
        request(l4, from: pod, to: "10.96.0.101", port: 80), by: [a1], "\(l4) pod -> served port")
    }
    // An address of the service CIDR that no Service has: dropped.
    expectOutcome(
      request(.tcp, from: pod, to: "10.96.99.99", port: 80), .timeout, "pod -> unallocated address")
    expectOutcome(
      request(.tcp, from: t.client, to: "10.96.99.99", port: 80), .timeout,
      "client -> unallocated address")
  }

  // MARK: loadBalancerSourceRanges

  @Test func loadBalancerSourceRanges() async throws {
    let t = try Topology()
    defer { t.teardown() }
    let (a1, b1) = (t.pod("a1"), t.pod("b1"))
    try await t.program([
      ServiceSpec(
        name: "partner", type: "LoadBalancer", clusterIPs: ["10.96.0.110"],
        ports: [
          ServicePort(l4: .tcp, port: 443, nodePort: 30130),
          ServicePort(l4: .udp, port: 443, nodePort: 30131),
        ],
        externalTrafficPolicy: "Cluster", loadBalancerIPs: ["203.0.113.13"],
        sourceRanges: ["192.168.10.96/28", "198.18.0.0/15"],
        endpoints: [Endpoint(pod: a1), Endpoint(pod: b1)])
    ])
    for (l4, nodePort) in [(L4.tcp, UInt16(30130)), (.udp, 30131)] {
      expectServed(
        request(l4, from: t.client, source: Topology.clientIPv4, to: "203.0.113.13", port: 443),
        by: [a1, b1],
        sourceIn: Topology.nodeAddresses, "\(l4) allowed client -> LB IP")
      expectOutcome(
        request(l4, from: t.client, source: Topology.outsiderIPv4, to: "203.0.113.13", port: 443),
        .timeout,
        "\(l4) blocked client -> LB IP")
      // NodePorts and the ClusterIP are not subject to the ranges.
      expectServed(
        request(
          l4, from: t.client, source: Topology.outsiderIPv4, to: Topology.nodeIPv4, port: nodePort),
        by: [a1, b1], "\(l4) blocked client -> NodePort")
      expectServed(
        request(l4, from: t.client, source: Topology.outsiderIPv4, to: "10.96.0.110", port: 443),
        by: [a1, b1],
        "\(l4) blocked client -> ClusterIP")
    }
  }

  // MARK: IPv6 and dual-stack

  @Test func ipv6ClusterIPAndNodePort() async throws {
    let t = try Topology()
    defer { t.teardown() }
    let (a1, a2, b1) = (t.pod("a1"), t.pod("a2"), t.pod("b1"))
    try await t.program([
      ServiceSpec(
        name: "web6", type: "NodePort", clusterIPs: ["fd00:10:96::10"],
        ports: [
          ServicePort(l4: .tcp, port: 80, nodePort: 30140),
          ServicePort(l4: .udp, port: 80, nodePort: 30141),
        ],
        externalTrafficPolicy: "Cluster", endpoints: [Endpoint(pod: a1), Endpoint(pod: b1)]),
      ServiceSpec(
        name: "self6", clusterIPs: ["fd00:10:96::11"], ports: Self.tcpUDP80,
        endpoints: [Endpoint(pod: a1)]),
      ServiceSpec(
        name: "empty6", clusterIPs: ["fd00:10:96::12"], ports: Self.tcpUDP80, endpoints: []),
    ])
    for (l4, nodePort) in [(L4.tcp, UInt16(30140)), (.udp, 30141)] {
      let fromPod = repeatRequests(16) {
        request(l4, from: t.namespace(of: a2), to: "fd00:10:96::10", port: 80)
      }
      for r in fromPod {
        expectServed(r, by: [a1, b1], sourceIn: [a2.ipv6], "\(l4) pod -> IPv6 ClusterIP")
      }
      #expect(Set(fromPod.compactMap(\.pod)) == ["a1", "b1"], "\(l4): \(tally(fromPod))")
      expectServed(
        request(l4, from: t.node, to: "fd00:10:96::10", port: 80), by: [a1, b1],
        sourceIn: Topology.nodeAddresses,
        "\(l4) node -> IPv6 ClusterIP")
      for r in repeatRequests(
        6, { request(l4, from: t.client, to: Topology.nodeIPv6, port: nodePort) })
      {
        expectServed(
          r, by: [a1, b1], sourceIn: Topology.nodeAddresses, "\(l4) client -> IPv6 NodePort")
      }
      expectServed(
        request(l4, from: t.namespace(of: a1), to: "fd00:10:96::11", port: 80), by: [a1],
        sourceIn: ["fd00:10:244:1::1"], "\(l4) IPv6 hairpin")
      expectOutcome(
        request(l4, from: t.namespace(of: a2), to: "fd00:10:96::12", port: 80), .refused,
        "\(l4) IPv6 no endpoints")
    }
    expectOutcome(
      request(.tcp, from: t.namespace(of: a2), to: "fd00:10:96::99", port: 80), .timeout,
      "IPv6 unallocated address")
  }

  @Test func dualStackService() async throws {
    let t = try Topology()
    defer { t.teardown() }
    let (a1, a2, b1) = (t.pod("a1"), t.pod("a2"), t.pod("b1"))
    try await t.program([
      ServiceSpec(
        name: "dual", type: "NodePort", clusterIPs: ["10.96.0.120", "fd00:10:96::120"],
        ports: [
          ServicePort(l4: .tcp, port: 80, nodePort: 30150),
          ServicePort(l4: .udp, port: 80, nodePort: 30151),
        ],
        externalTrafficPolicy: "Local", endpoints: [Endpoint(pod: a1), Endpoint(pod: b1)])
    ])
    for (l4, nodePort) in [(L4.tcp, UInt16(30150)), (.udp, 30151)] {
      for (family, clusterIP) in [(Family.ipv4, "10.96.0.120"), (.ipv6, "fd00:10:96::120")] {
        expectServed(
          request(l4, from: t.namespace(of: a2), to: clusterIP, port: 80), by: [a1, b1],
          sourceIn: [a2.ip(family)],
          "\(l4) pod -> \(family) ClusterIP")
      }
      // eTP=Local on both families: only the local endpoint, the client's address preserved.
      for (client, nodeIP) in [
        (Topology.clientIPv4, Topology.nodeIPv4), (Topology.clientIPv6, Topology.nodeIPv6),
      ] {
        for r in repeatRequests(
          6, { request(l4, from: t.client, source: client, to: nodeIP, port: nodePort) })
        {
          expectServed(r, by: [a1], sourceIn: [client], "\(l4) client -> NodePort on \(nodeIP)")
        }
      }
    }
  }

  // MARK: SCTP

  @Test func sctpRulesAreInTheKernel() async throws {
    let t = try Topology(localPods: 2, remotePods: 2)
    defer { t.teardown() }
    let (a1, a2, b1) = (t.pod("a1"), t.pod("a2"), t.pod("b1"))
    try await t.program([
      ServiceSpec(
        name: "diameter", type: "NodePort", clusterIPs: ["10.96.0.130", "fd00:10:96::130"],
        ports: [ServicePort(l4: .sctp, port: 3868, nodePort: 30868)],
        externalTrafficPolicy: "Cluster",
        endpoints: [Endpoint(pod: a1), Endpoint(pod: b1)])
    ])
    let ruleset = try t.node.nftListRuleset()
    for needle in [
      "10.96.0.130 . sctp . 3868", "fd00:10:96::130 . sctp . 3868", "sctp . 30868",
      "service-default/diameter/sctp/sctp-3868", "dnat to 10.244.1.11:8080",
      "dnat to [fd00:10:244:2::11]:8080",
    ] {
      #expect(ruleset.contains(needle), "the kernel's rule set lacks '\(needle)'")
    }
    if let why = t.servers.sctpUnavailable {
      // Recorded in the test output, not hidden: the rules are proven, the traffic is not.
      print(
        """
        DATAPLANE NOTE: SCTP traffic NOT run on this machine: SCTP sockets are unavailable in this \
        kernel (\(why)). The SCTP service's rules were accepted by the kernel and are checked above; \
        real traffic covers TCP and UDP only.
        """)
      #expect(why.contains("errno \(EPROTONOSUPPORT)"), "unexpected SCTP socket failure: \(why)")
    } else {
      for ip in ["10.96.0.130", "fd00:10:96::130"] {
        expectServed(
          request(.sctp, from: t.namespace(of: a2), to: ip, port: 3868), by: [a1, b1],
          "sctp pod -> \(ip)")
      }
      expectServed(
        request(.sctp, from: t.client, to: Topology.nodeIPv4, port: 30868), by: [a1, b1],
        sourceIn: Topology.nodeAddresses,
        "sctp client -> NodePort")
    }
  }

  // MARK: Endpoint churn

  @Test func udpClientMovesOffARemovedEndpoint() async throws {
    let t = try Topology()
    defer { t.teardown() }
    let (a1, a3, b1) = (t.pod("a1"), t.pod("a3"), t.pod("b1"))
    func service(_ endpoints: [Pod]) -> ServiceSpec {
      ServiceSpec(
        name: "dns", clusterIPs: ["10.96.0.140"], ports: [ServicePort(l4: .udp, port: 53)],
        endpoints: endpoints.map { Endpoint(pod: $0) })
    }
    try await t.program([service([a1, b1])])
    let session = try UDPSession(from: t.namespace(of: a3), to: "10.96.0.140", port: 53)
    let first = session.exchange()
    expectServed(first, by: [a1, b1], "before the change")
    guard let removed = first.pod else { return }
    for _ in 0..<3 {
      #expect(session.exchange().pod == removed, "one UDP flow stays on one endpoint")
    }

    try await t.program([service([a1, b1].filter { $0.name != removed })])
    let after = repeatRequests(5) { session.exchange() }
    // The sync deleted the flow's conntrack entry, which still pointed at the removed endpoint.
    #expect(
      after.last?.pod != nil && after.last?.pod != removed,
      "after removing \(removed) the same UDP flow still goes to: \(after)")
  }
}
