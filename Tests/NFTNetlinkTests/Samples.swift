import IPAddr
import NFTables
import TestSupport

/// Hand-built rule sets for the netlink tests.
enum Samples {
  static func ip(_ s: String) -> IPAddress { IPAddress(s)! }
  static func cidr(_ s: String) -> CIDR { CIDR(s)! }

  /// Every statement, selector and set kind of the IR, in an ip and an ip6 table.
  static func everything(table: String = "nftproxy") -> Ruleset {
    let v4 = Table(
      family: .ip, name: table, comment: "managed by nftproxy; do not edit",
      sets: [
        NamedSet(
          name: "cluster-ips", keyType: [.ipv4Addr], comment: "active ClusterIPs",
          elements: [
            SetElement(key: [.address(ip("10.96.0.1"))], comment: "default/kubernetes"),
            SetElement(key: [.address(ip("10.96.0.10"))]),
          ]),
        NamedSet(
          name: "nodeport-addresses", keyType: [.ipv4Addr], flags: [.interval], comment: "local",
          elements: [
            SetElement(key: [.prefix(cidr("10.0.0.0/8"))], comment: "private"),
            SetElement(key: [.prefix(cidr("192.168.1.1/32"))]),
            SetElement(key: [.prefix(cidr("172.16.0.0/14"))]),
          ]),
        NamedSet(
          name: "service-ips", keyType: [.ipv4Addr, .inetProto, .inetService], dataType: .verdict,
          comment: "frontends",
          elements: [
            SetElement(
              key: [.address(ip("10.96.0.1")), .proto(.tcp), .port(443)],
              data: .verdict(.goto("svc-a")),
              comment: "default/kubernetes:https"),
            SetElement(
              key: [.address(ip("10.96.0.10")), .proto(.udp), .port(53)],
              data: .verdict(.jump("svc-a"))),
            SetElement(
              key: [.address(ip("10.96.0.11")), .proto(.tcp), .port(80)], data: .verdict(.accept)),
            SetElement(
              key: [.address(ip("10.96.0.12")), .proto(.sctp), .port(80)], data: .verdict(.drop)),
          ]),
        NamedSet(
          name: "service-nodeports", keyType: [.inetProto, .inetService], dataType: .verdict,
          elements: [SetElement(key: [.proto(.tcp), .port(30080)], data: .verdict(.goto("svc-a")))]),
        NamedSet(
          name: "reject-services", keyType: [.ipv4Addr, .inetProto, .inetService],
          elements: [SetElement(key: [.address(ip("10.96.0.20")), .proto(.tcp), .port(80)])]),
        NamedSet(
          name: "hairpin", keyType: [.ipv4Addr, .ipv4Addr],
          elements: [SetElement(key: [.address(ip("10.1.0.1")), .address(ip("10.1.0.1"))])]),
        NamedSet(
          name: "affinity", keyType: [.ipv4Addr], flags: [.dynamic, .timeout], timeout: 10800,
          size: 65535,
          comment: "ClientIP affinity"),
        NamedSet(
          name: "marks", keyType: [.ipv4Addr], dataType: .mark,
          elements: [SetElement(key: [.address(ip("1.2.3.4"))], data: .value([.integer(5)]))]),
        NamedSet(
          name: "ports", keyType: [.inetService],
          elements: [SetElement(key: [.port(80)]), SetElement(key: [.port(8080)], comment: "alt")]),
        NamedSet(
          name: "protos", keyType: [.inetProto], elements: [SetElement(key: [.proto(.udp)])]),
        NamedSet(
          name: "mark-set", keyType: [.mark], elements: [SetElement(key: [.integer(0x4000)])]),
        NamedSet(
          name: "nat-targets", keyType: [.ipv4Addr, .inetService], dataType: .ipv4Addr,
          comment: "targets",
          elements: [
            SetElement(
              key: [.address(ip("10.96.0.1")), .port(80)], data: .value([.address(ip("10.1.0.1"))]),
              comment: "a")
          ]),
        NamedSet(
          name: "port-map", keyType: [.inetService], dataType: .inetService,
          elements: [SetElement(key: [.port(80)], data: .value([.port(8080)]))]),
        NamedSet(
          name: "proto-map", keyType: [.inetProto], dataType: .inetProto,
          elements: [SetElement(key: [.proto(.tcp)], data: .value([.proto(.udp)]))]),
        NamedSet(
          name: "timed", keyType: [.ipv4Addr, .inetProto], flags: [.timeout], timeout: 90,
          comment: "no elements: their expiry countdown would make listings differ"),
        NamedSet(
          name: "fixed", keyType: [.ipv6Addr], flags: [.constant],
          elements: [SetElement(key: [.address(ip("::2"))])]),
      ],
      chains: [
        Chain(
          name: "nat-prerouting",
          base: BaseChainSpec(type: .nat, hook: .prerouting, priority: -100),
          rules: [Rule([.verdict(.jump("services"))])]),
        Chain(
          name: "nat-output", base: BaseChainSpec(type: .nat, hook: .output, priority: -100),
          rules: [Rule([.verdict(.jump("services"))])]),
        Chain(
          name: "filter-input",
          base: BaseChainSpec(type: .filter, hook: .input, priority: 0, policy: .drop),
          comment: "input checks",
          rules: [Rule([.ctState(.new), .verdict(.jump("checks"))]), Rule([.verdict(.accept)])]),
        Chain(
          name: "firewall", base: BaseChainSpec(type: .filter, hook: .prerouting, priority: -110),
          rules: [Rule([.counter])]),
        Chain(
          name: "nat-postrouting",
          base: BaseChainSpec(type: .nat, hook: .postrouting, priority: 100),
          rules: [
            Rule(
              [
                .ctStatus(.dnat),
                .lookup([.saddr(.ip), .daddr(.ip)], set: "hairpin", negate: false),
                .verdict(.jump("mark-for-masquerade")),
              ], comment: "hairpin"),
            Rule([.verdict(.jump("masquerading"))]),
          ]),
        Chain(
          name: "services", comment: "DNAT",
          rules: [
            Rule([.vmap([.daddr(.ip), .l4proto, .thDport], map: "service-ips")]),
            Rule(
              [
                .fibTypeLocal(.daddr),
                .lookup([.daddr(.ip)], set: "nodeport-addresses", negate: false),
                .vmap([.l4proto, .thDport], map: "service-nodeports"),
              ], comment: "NodePorts"),
          ]),
        Chain(
          name: "checks",
          rules: [
            Rule(
              [
                .lookup([.daddr(.ip), .l4proto, .thDport], set: "reject-services", negate: false),
                .reject,
              ],
              comment: "no endpoints"),
            Rule([
              .lookup([.daddr(.ip), .l4proto, .thDport], set: "reject-services", negate: true),
              .counter,
            ]),
            Rule([.lookup([.daddr(.ip)], set: "cluster-ips", negate: false), .reject]),
            Rule(
              [.match(.daddr(.ip), .eq, .prefix(cidr("10.96.0.0/12"))), .verdict(.drop)],
              comment: "unallocated"),
            Rule([.fibTypeLocal(.saddr), .verdict(.accept)]),
            Rule([.match(.saddr(.ip), .eq, .prefix(cidr("10.0.0.0/8"))), .verdict(.return)]),
            Rule([.match(.saddr(.ip), .neq, .prefix(cidr("10.0.0.0/8"))), .verdict(.return)]),
            Rule([.match(.saddr(.ip), .neq, .prefix(cidr("0.0.0.0/0"))), .verdict(.return)]),
            Rule([.match(.saddr(.ip), .neq, .address(ip("10.0.0.1"))), .verdict(.return)]),
            Rule([.match(.daddr(.ip), .neq, .prefix(cidr("127.0.0.0/8"))), .verdict(.return)]),
            Rule([
              .match(.l4proto, .eq, .proto(.tcp)), .match(.thDport, .eq, .port(80)),
              .verdict(.accept),
            ]),
            Rule([
              .match(.l4proto, .eq, .proto(.udp)), .match(.thDport, .neq, .port(53)),
              .verdict(.drop),
            ]),
            Rule([.match(.mark, .eq, .integer(5)), .verdict(.accept)]),
            Rule([.lookup([.thDport], set: "ports", negate: false), .verdict(.accept)]),
            Rule([.lookup([.l4proto], set: "protos", negate: false), .verdict(.accept)]),
            Rule([.lookup([.mark], set: "mark-set", negate: false), .verdict(.accept)]),
            Rule([.verdict(.goto("empty"))]),
          ]),
        Chain(name: "empty", comment: "nothing here"),
        Chain(name: "mark-for-masquerade", rules: [Rule([.markOr(0x4000)])]),
        Chain(
          name: "masquerading",
          rules: [
            Rule([.markMask(mask: 0x4000, .eq, 0), .verdict(.return)]),
            Rule([.markMask(mask: 0x4000, .neq, 0), .counter]),
            Rule([.markXor(0x4000)]),
            Rule([.masquerade(fullyRandom: true)]),
            Rule([.masquerade(fullyRandom: false)], comment: "plain"),
          ]),
        Chain(
          name: "svc-a", comment: "default/kubernetes:https",
          rules: [
            Rule([
              .lookup([.saddr(.ip)], set: "affinity", negate: false), .verdict(.goto("endpoint-1")),
            ]),
            Rule([
              .match(.l4proto, .eq, .proto(.tcp)), .match(.numgenRandom(mod: 3), .eq, .integer(0)),
              .dnat(ip("10.1.0.1"), port: 8080),
            ]),
            Rule([
              .match(.numgenRandom(mod: 2), .eq, .integer(0)), .dnat(ip("10.1.0.2"), port: nil),
            ]),
            Rule([.match(.l4proto, .eq, .proto(.udp)), .dnat(ip("10.1.0.3"), port: 53)]),
          ]),
        Chain(
          name: "endpoint-1",
          rules: [
            Rule([
              .updateSet(.saddr(.ip), set: "affinity"), .match(.l4proto, .eq, .proto(.tcp)),
              .dnat(ip("10.1.0.1"), port: 8080),
            ])
          ]),
      ])

    let v6 = Table(
      family: .ip6, name: table,
      sets: [
        NamedSet(
          name: "cluster-ips", keyType: [.ipv6Addr],
          elements: [SetElement(key: [.address(ip("fd00::1"))])]),
        NamedSet(
          name: "nodeport-addresses", keyType: [.ipv6Addr], flags: [.interval],
          elements: [
            SetElement(key: [.prefix(cidr("fd00::/64"))]),
            SetElement(key: [.prefix(cidr("::1/128"))]),
            SetElement(key: [.prefix(cidr("fd01:2:3::/60"))], comment: "odd prefix"),
          ]),
        NamedSet(
          name: "service-ips", keyType: [.ipv6Addr, .inetProto, .inetService], dataType: .verdict,
          elements: [
            SetElement(
              key: [.address(ip("fd00::1")), .proto(.tcp), .port(443)],
              data: .verdict(.goto("svc-a")))
          ]),
        NamedSet(name: "reject-services", keyType: [.ipv6Addr, .inetProto, .inetService]),
        NamedSet(
          name: "affinity", keyType: [.ipv6Addr], flags: [.dynamic, .timeout], timeout: 60,
          size: 1024),
      ],
      chains: [
        Chain(
          name: "nat-prerouting",
          base: BaseChainSpec(type: .nat, hook: .prerouting, priority: -100),
          rules: [Rule([.vmap([.daddr(.ip6), .l4proto, .thDport], map: "service-ips")])]),
        Chain(
          name: "filter-input", base: BaseChainSpec(type: .filter, hook: .input, priority: 0),
          rules: [
            Rule([
              .lookup([.daddr(.ip6), .l4proto, .thDport], set: "reject-services", negate: false),
              .reject,
            ]),
            Rule([.match(.saddr(.ip6), .eq, .prefix(cidr("fd00::/64"))), .verdict(.return)]),
            Rule([.match(.saddr(.ip6), .eq, .prefix(cidr("fd01:2:3::/60"))), .verdict(.return)]),
            Rule([.match(.saddr(.ip6), .neq, .address(ip("fd00::1"))), .verdict(.return)]),
            Rule([
              .fibTypeLocal(.daddr), .match(.daddr(.ip6), .neq, .prefix(cidr("::1/128"))),
              .verdict(.drop),
            ]),
          ]),
        Chain(
          name: "svc-a",
          rules: [
            Rule([
              .updateSet(.saddr(.ip6), set: "affinity"), .match(.l4proto, .eq, .proto(.tcp)),
              .dnat(ip("fd00::2"), port: 8080),
            ]),
            Rule([.dnat(ip("fd00::3"), port: nil)]),
          ]),
        Chain(
          name: "nat-postrouting",
          base: BaseChainSpec(type: .nat, hook: .postrouting, priority: 100),
          rules: [Rule([.masquerade(fullyRandom: true)])]),
      ])
    return Ruleset(headerComments: ["sample"], tables: [v4, v6])
  }

  /// A synthetic service table: `services` chains with `endpoints` DNAT rules each and a verdict
  /// map `service-ips` with one element per service.
  static func services(_ n: Int, endpoints: Int = 10, table: String = "nftproxy") -> Ruleset {
    var chains: [Chain] = [
      Chain(
        name: "nat-prerouting", base: BaseChainSpec(type: .nat, hook: .prerouting, priority: -100),
        rules: [Rule([.verdict(.jump("services"))])]),
      Chain(
        name: "services",
        rules: [Rule([.vmap([.daddr(.ip), .l4proto, .thDport], map: "service-ips")])]),
    ]
    var elements: [SetElement] = []
    for i in 0..<n {
      let name = "svc-\(i)"
      let vip = IPAddress.v4(0x0a60_0000 + UInt32(i))
      elements.append(
        SetElement(
          key: [.address(vip), .proto(.tcp), .port(80)], data: .verdict(.goto(name)),
          comment: "ns/svc-\(i):http"))
      chains.append(
        Chain(
          name: name, comment: "ns/svc-\(i):http",
          rules: endpointRules(service: i, endpoints: endpoints)))
    }
    let t = Table(
      family: .ip, name: table, comment: "managed by nftproxy; do not edit",
      sets: [
        NamedSet(
          name: "service-ips", keyType: [.ipv4Addr, .inetProto, .inetService], dataType: .verdict,
          elements: elements)
      ], chains: chains)
    return Ruleset(tables: [t])
  }

  static func endpointRules(service i: Int, endpoints: Int, generation: UInt32 = 0) -> [Rule] {
    (0..<endpoints).map { e in
      var s: [Statement] = [.match(.l4proto, .eq, .proto(.tcp))]
      if e < endpoints - 1 {
        s.append(.match(.numgenRandom(mod: UInt32(endpoints - e)), .eq, .integer(0)))
      }
      let addr = IPAddress.v4(
        0x0a01_0000 + UInt32(i % 60000) * 16 + UInt32(e) + generation * 0x0100_0000)
      s.append(.dnat(addr, port: 8080))
      return Rule(s)
    }
  }
}

/// `nft list ruleset` output with the top-level blocks (sets, maps, chains) of each table sorted,
/// so that two kernels holding the same objects created in different order compare equal.
func sortedListing(_ s: String) -> String {
  var out: [String] = []
  var blocks: [String] = []
  var cur: [String] = []
  var head: [String] = []
  var inTable = false
  for line in s.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
    if line.hasPrefix("table ") {
      inTable = true
      out.append(line)
      head = []
      blocks = []
      continue
    }
    if inTable && line == "}" {
      out += head
      out += blocks.sorted()
      out.append(line)
      inTable = false
      continue
    }
    guard inTable else {
      out.append(line)
      continue
    }
    if line.hasPrefix("\t") && !line.hasPrefix("\t\t") && (line.hasSuffix("{")) {
      cur = [line]
    } else if line == "\t}" {
      cur.append(line)
      blocks.append(cur.joined(separator: "\n"))
      cur = []
    } else if !cur.isEmpty {
      cur.append(line)
    } else if !line.isEmpty {
      head.append(line)
    }
  }
  return out.joined(separator: "\n")
}
