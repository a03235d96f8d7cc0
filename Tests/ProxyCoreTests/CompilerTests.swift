import IPAddr
import KubeModel
import NFTables
import ProxyCore
import Testing

@Suite("Compiler")
struct CompilerTests {
  func compile(
    _ services: [Service], _ slices: [EndpointSlice], config: ProxyConfig = Fx.config()
  ) -> Table {
    let r = Fx.resolve(services, slices, config: config)
    return Compiler.compile(r, config: config).tables[0]
  }

  func set(_ t: Table, _ name: String) -> NamedSet? { t.sets.first { $0.name == name } }
  func chain(_ t: Table, _ name: String) -> Chain? { t.chains.first { $0.name == name } }

  @Test func serviceWithoutEndpointsIsRejectedNotMapped() throws {
    let t = compile([Fx.service("web", type: "NodePort")], [])
    #expect(set(t, "service-ips")?.elements.isEmpty == true)
    #expect(set(t, "reject-services")?.elements.count == 1)
    #expect(set(t, "reject-nodeports")?.elements.first?.key == [.proto(.tcp), .port(30080)])
    #expect(chain(t, "service-default/web/tcp/http") == nil)
  }

  @Test func endpointCascadeIsUniform() throws {
    let eps = (1...4).map { Fx.EP(ip: "10.244.2.\($0)") }
    let t = compile([Fx.service("web")], [Fx.slice("web", eps)])
    let c = try #require(chain(t, "service-default/web/tcp/http"))
    let mods: [UInt32?] = c.rules.compactMap { rule in
      guard rule.statements.contains(where: { if case .dnat = $0 { return true } else { return false } })
      else { return nil }
      for s in rule.statements {
        if case .match(.numgenRandom(let m), .eq, .integer(0)) = s { return m }
      }
      return UInt32?.none
    }
    #expect(mods == [4, 3, 2, nil])
  }

  @Test func clusterIPMasqueradesNonPodSources() throws {
    let t = compile([Fx.service("web")], [Fx.slice("web", [Fx.EP(ip: "10.244.2.1")])])
    let first = try #require(chain(t, "service-default/web/tcp/http")?.rules.first)
    #expect(first.statements.contains(.match(.saddr(.ip), .neq, .prefix(CIDR("10.244.0.0/16")!))))
    #expect(first.statements.last == .verdict(.jump("mark-for-masquerade")))
  }

  @Test func masqueradeAllMasqueradesEverySource() throws {
    let cfg = Fx.config { $0.masqueradeAll = true }
    let t = compile([Fx.service("web")], [Fx.slice("web", [Fx.EP(ip: "10.244.2.1")])], config: cfg)
    let first = try #require(chain(t, "service-default/web/tcp/http")?.rules.first)
    #expect(first.statements == [.match(.daddr(.ip), .eq, .address(IPAddress("10.96.0.10")!)), .verdict(.jump("mark-for-masquerade"))])
  }

  @Test func externalLocalWithoutLocalEndpointsDropsButShortCircuitsPods() throws {
    let t = compile(
      [Fx.service("web", type: "NodePort", eTP: "Local")], [Fx.slice("web", [Fx.EP(ip: "10.244.2.1")])])
    let ext = try #require(chain(t, "external-default/web/tcp/http"))
    #expect(ext.rules.first?.statements.last == .verdict(.goto("service-default/web/tcp/http")))
    #expect(ext.rules.last?.statements == [.verdict(.drop)])
    #expect(chain(t, "local-default/web/tcp/http") == nil)
  }

  @Test func internalLocalWithoutLocalEndpointsDropsInTheMap() throws {
    let t = compile([Fx.service("web", iTP: "Local")], [Fx.slice("web", [Fx.EP(ip: "10.244.2.1")])])
    #expect(set(t, "service-ips")?.elements.first?.data == .verdict(.drop))
  }

  @Test func affinityUsesOneTimeoutSetPerEndpoint() throws {
    let svc = Fx.service("web") {
      $0.spec.sessionAffinity = "ClientIP"
      $0.spec.sessionAffinityConfig = SessionAffinityConfig(clientIP: ClientIPConfig(timeoutSeconds: 60))
    }
    let t = compile([svc], [Fx.slice("web", [Fx.EP(ip: "10.244.2.1"), Fx.EP(ip: "10.244.2.2")])])
    let aff = t.sets.filter { $0.name.hasPrefix("affinity-") }
    #expect(aff.count == 2)
    #expect(aff.allSatisfy { $0.timeout == 60 && $0.flags == [.dynamic, .timeout] })
    #expect(t.chains.filter { $0.name.hasPrefix("endpoint-") }.count == 2)
  }

  @Test func firewallOnlyForLoadBalancerIPsWithRanges() throws {
    let svc = Fx.service("lb", type: "LoadBalancer") {
      $0.spec.loadBalancerSourceRanges = ["192.0.2.0/24"]
      $0.spec.externalIPs = ["198.51.100.1"]
      $0.status = ServiceStatus(loadBalancer: LoadBalancerStatus(ingress: [LoadBalancerIngress(ip: "203.0.113.1")]))
    }
    let t = compile([svc], [Fx.slice("lb", [Fx.EP(ip: "10.244.2.1")])])
    let fw = try #require(set(t, "firewall-ips"))
    #expect(fw.elements.map { $0.key[0] } == [.address(IPAddress("203.0.113.1")!)])
    let c = try #require(chain(t, "firewall-default/lb/tcp/http"))
    #expect(c.rules.last?.statements == [.verdict(.drop)])
  }

  @Test func ipv6OnlyClusterGetsOnlyAnIp6Table() throws {
    let cfg = ProxyConfig(
      hostname: "node-a", nodeIPs: [IPAddress("fd00::11")!], clusterCIDRs: [CIDR("fd00:10:244::/56")!])
    let svc = Fx.service("web", clusterIP: "fd00:10:96::10")
    let r = Fx.resolve(
      [svc], [Fx.slice("web", family: "IPv6", [Fx.EP(ip: "fd00:10:244:2::1")])], config: cfg, node: nil)
    let rs = Compiler.compile(r, config: cfg)
    #expect(rs.tables.map(\.family) == [.ip6])
    #expect(rs.tables[0].chains.contains { $0.name == "service-default/web/tcp/http" })
  }

  @Test func longNamesAreShortenedUniquely() {
    let long = String(repeating: "a", count: 300)
    let a = Compiler.limitName(long + "x")
    let b = Compiler.limitName(long + "y")
    #expect(a.utf8.count <= 255 && b.utf8.count <= 255 && a != b)
  }

  @Test func compileIsDeterministic() {
    let eps = (1...5).map { Fx.EP(ip: "10.244.2.\($0)") }
    let s = [Fx.service("b", clusterIP: "10.96.0.2"), Fx.service("a", clusterIP: "10.96.0.1")]
    let sl = [Fx.slice("a", eps), Fx.slice("b", eps.reversed())]
    let r1 = Compiler.compile(Fx.resolve(s, sl), config: Fx.config())
    let r2 = Compiler.compile(Fx.resolve(s.reversed(), sl.reversed()), config: Fx.config())
    #expect(r1 == r2)
  }
}
