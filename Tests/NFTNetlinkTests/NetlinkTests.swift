import Foundation
import IPAddr
import NFTables
import TestSupport
import Testing

@testable import NFTNetlink

/// Applies `ruleset` through netlink in one namespace and through `nft -f` of the rendered text in
/// another, and returns both `nft list ruleset` outputs.
func listings(_ ruleset: Ruleset) throws -> (netlink: String, nft: String) {
  let a = try NetNS()
  let b = try NetNS()
  defer {
    a.delete()
    b.delete()
  }
  let backend = try NFTBackend(namespacePath: a.path)
  _ = try backend.sync(ruleset)
  try b.nftLoad(NFTText.render(ruleset))
  return (try a.nftListRuleset(), try b.nftListRuleset())
}

@Suite(.serialized) struct KernelEncoderTests {
  @Test(.enabled(if: KernelTests.enabled))
  func everyStatementAndSetKindMatchesNft() throws {
    let (netlink, nft) = try listings(Samples.everything())
    #expect(!netlink.isEmpty)
    #expect(netlink == nft)
  }

  @Test(.enabled(if: KernelTests.enabled))
  func readBackDecodesWhatWasApplied() throws {
    let ns = try NetNS()
    defer { ns.delete() }
    let rs = Samples.everything()
    let backend = try NFTBackend(namespacePath: ns.path)
    _ = try backend.sync(rs)
    let back = try backend.readBack(tables: [(.ip, "nftproxy"), (.ip6, "nftproxy")])
    let expected = KernelForm.normalize(rs)
    #expect(back == expected)
    #expect(Diff.compare(back, expected).isEmpty)
    #expect(try backend.diffAgainstKernel(rs).isEmpty)
  }

  @Test(.enabled(if: KernelTests.enabled))
  func largeTableInOneBatch() throws {
    let rs = Samples.services(2000, endpoints: 5)
    let ns = try NetNS()
    defer { ns.delete() }
    let backend = try NFTBackend(namespacePath: ns.path)
    let report = try backend.sync(rs)
    #expect(report.kind == .full)
    #expect(report.messageCount > 10_000)
    let back = try backend.readBack(tables: [(.ip, "nftproxy")])
    #expect(Diff.compare(back, KernelForm.normalize(rs)).isEmpty)
  }
}

@Suite(.serialized) struct KernelTransactionTests {
  @Test(.enabled(if: KernelTests.enabled))
  func rejectedBatchChangesNothingAndNamesTheOperation() throws {
    let ns = try NetNS()
    defer { ns.delete() }
    let backend = try NFTBackend(namespacePath: ns.path)
    let good = Samples.everything()
    _ = try backend.sync(good)
    let before = try ns.nftListRuleset()

    // A jump to a chain that does not exist, plus many valid changes around it.
    var bad = good
    bad.tables[0].chains[6].rules.append(Rule([.verdict(.jump("no-such-chain"))]))
    bad.tables[0].sets[0].elements.append(SetElement(key: [.address(IPAddress("10.96.9.9")!)]))
    bad.tables[0].chains.append(Chain(name: "new-chain", rules: [Rule([.counter])]))
    var caught: NFTError?
    do {
      _ = try backend.sync(bad)
    } catch let e as NFTError {
      caught = e
    }
    guard case .rejected(let op, let errno, _)? = caught else {
      Issue.record("expected a rejection, got \(String(describing: caught))")
      return
    }
    #expect(op == "add rule to chain checks of table ip nftproxy")
    #expect(errno == ENOENT)
    #expect(caught!.description.hasPrefix("add rule to chain checks of table ip nftproxy: "))
    #expect(try ns.nftListRuleset() == before)
    #expect(backend.applied == good)

    // A full sync that the kernel rejects (masquerade outside postrouting) leaves everything too.
    var bad2 = good
    bad2.tables[0].chains[0].rules.append(Rule([.masquerade(fullyRandom: false)]))
    #expect(throws: NFTError.self) { try backend.sync(bad2, full: true) }
    #expect(try ns.nftListRuleset() == before)

    // And the backend still works afterwards.
    let report = try backend.sync(good)
    #expect(report.kind == .none)
  }

  @Test(.enabled(if: KernelTests.enabled))
  func noChangeSendsNothing() throws {
    let ns = try NetNS()
    defer { ns.delete() }
    let backend = try NFTBackend(namespacePath: ns.path)
    let rs = Samples.everything()
    let first = try backend.sync(rs)
    #expect(first.kind == .full)
    let gen = try backend.generation()
    let second = try backend.sync(rs)
    #expect(second.kind == .none)
    #expect(second.messageCount == 0)
    #expect(try backend.generation() == gen)
    #expect(try backend.plan(rs, full: false).messageCount == 0)
  }

  @Test(.enabled(if: KernelTests.enabled))
  func takeoverReplacesExistingTableInOneTransaction() throws {
    let ns = try NetNS()
    defer { ns.delete() }
    try ns.nftLoad(
      """
      table ip nftproxy {
      \tset stale { type ipv4_addr; elements = { 1.1.1.1 } }
      \tchain services { ip daddr 1.1.1.1 drop; }
      \tchain nat-prerouting { type nat hook prerouting priority -100; policy accept; jump services; }
      }
      """)
    let gen = try NFTBackend(namespacePath: ns.path).generation()
    let backend = try NFTBackend(namespacePath: ns.path)
    let rs = Samples.everything()
    let report = try backend.sync(rs)
    #expect(report.kind == .full)
    // One commit: the generation moved by exactly one.
    #expect(report.generation == gen &+ 1)
    let other = try NetNS()
    defer { other.delete() }
    try other.nftLoad(NFTText.render(rs))
    #expect(try ns.nftListRuleset() == other.nftListRuleset())
  }

  @Test(.enabled(if: KernelTests.enabled))
  func driftIsDetectedAndRepaired() throws {
    let ns = try NetNS()
    defer { ns.delete() }
    let backend = try NFTBackend(namespacePath: ns.path)
    let rs = Samples.everything()
    _ = try backend.sync(rs)
    let clean = try ns.nftListRuleset()
    try ns.exec(["nft", "add", "rule", "ip", "nftproxy", "services", "counter", "drop"])
    try ns.exec(["nft", "delete", "element", "ip", "nftproxy", "cluster-ips", "{ 10.96.0.10 }"])
    #expect(try ns.nftListRuleset() != clean)
    #expect(try !backend.diffAgainstKernel(rs).isEmpty)
    let report = try backend.sync(rs)
    #expect(report.kind == .full)
    #expect(report.reason.contains("generation"))
    #expect(try ns.nftListRuleset() == clean)
    #expect(try backend.diffAgainstKernel(rs).isEmpty)
    #expect(try backend.sync(rs).kind == .none)
  }

  @Test(.enabled(if: KernelTests.enabled))
  func cleanupLeavesOtherTablesAlone() throws {
    let ns = try NetNS()
    defer { ns.delete() }
    let other =
      "table inet other {\n\tchain c {\n\t\ttype filter hook input priority 0; policy accept;\n\t\tcounter\n\t}\n}\n"
    try ns.nftLoad(other)
    let only = try ns.nftListRuleset()
    let backend = try NFTBackend(namespacePath: ns.path)
    _ = try backend.sync(Samples.everything())
    #expect(try ns.nftListRuleset() != only)
    try backend.cleanup(tables: [(.ip, "nftproxy"), (.ip6, "nftproxy")])
    #expect(try ns.nftListRuleset() == only)
    // Absent tables are fine.
    try backend.cleanup(tables: [(.ip, "nftproxy"), (.ip6, "nftproxy")])
    #expect(try ns.nftListRuleset() == only)
  }

  @Test(.enabled(if: KernelTests.enabled))
  func socketOpensInsideTheNamespace() throws {
    let ns = try NetNS()
    defer { ns.delete() }
    let backend = try NFTBackend(namespacePath: ns.path)
    _ = try backend.sync(Samples.services(3))
    #expect(try ns.nftListRuleset().contains("table ip nftproxy"))
    #expect(throws: NFTError.self) {
      try NFTBackend(namespacePath: "/var/run/netns/does-not-exist-\(getpid())")
    }
  }
}

/// Random mutations of a rule set, applied partially, end in the same kernel state as one full
/// sync of the final rule set.
@Suite(.serialized) struct KernelPartialSyncTests {
  struct Rng: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return state ^ (state >> 33)
    }
  }

  static func mutate(_ rs: inout Ruleset, _ rng: inout Rng, step: Int) {
    var t = rs.tables[0]
    let services = t.chains.indices.filter { t.chains[$0].name.hasPrefix("svc-") }
    let mapIndex = t.sets.firstIndex { $0.name == "service-ips" }!
    switch Int.random(in: 0..<8, using: &rng) {
    case 0, 1:  // endpoints of one service change
      if let i = services.randomElement(using: &rng) {
        let n = Int.random(in: 1...4, using: &rng)
        t.chains[i].rules = Samples.endpointRules(
          service: i, endpoints: n, generation: UInt32(step % 3))
      }
    case 2:  // new service
      let name = "svc-new-\(step)"
      t.chains.append(
        Chain(
          name: name, comment: "added at \(step)",
          rules: Samples.endpointRules(service: step, endpoints: 2)))
      t.sets[mapIndex].elements.append(
        SetElement(
          key: [.address(.v4(0x0a61_0000 + UInt32(step))), .proto(.udp), .port(53)],
          data: .verdict(.goto(name))))
    case 3:  // service removed
      if let i = services.randomElement(using: &rng) {
        let name = t.chains[i].name
        t.chains.remove(at: i)
        t.sets[mapIndex].elements.removeAll {
          $0.data == .verdict(.goto(name)) || $0.data == .verdict(.jump(name))
        }
      }
    case 4:  // element data or comment changes
      if !t.sets[mapIndex].elements.isEmpty {
        let i = Int.random(in: 0..<t.sets[mapIndex].elements.count, using: &rng)
        t.sets[mapIndex].elements[i].comment = "changed \(step)"
      }
    case 5:  // interval set changes
      if let s = t.sets.firstIndex(where: { $0.name == "nodeport-addresses" }) {
        t.sets[s].elements = [
          SetElement(key: [
            .prefix(CIDR(address: .v4(0x0a00_0000 + UInt32(step) << 8), prefixLength: 24))
          ]),
          SetElement(key: [.prefix(CIDR("192.168.0.1/32")!)]),
        ]
      }
    case 6:  // a set added or removed
      if let s = t.sets.firstIndex(where: { $0.name.hasPrefix("extra-") }) {
        t.sets.remove(at: s)
      } else {
        t.sets.append(
          NamedSet(
            name: "extra-\(step)", keyType: [.ipv4Addr, .inetService],
            elements: [SetElement(key: [.address(.v4(UInt32(step))), .port(UInt16(step))])]))
      }
    default:  // table-level change: a chain comment changes (replaces the table)
      if let i = services.randomElement(using: &rng) { t.chains[i].comment = "renamed at \(step)" }
    }
    rs.tables[0] = t
  }

  @Test(.enabled(if: KernelTests.enabled), arguments: [1, 2, 3])
  func randomPartialSyncsEqualOneFullSync(seed: UInt64) throws {
    var rng = Rng(state: seed)
    var rs = Samples.services(20, endpoints: 3)
    rs.tables[0].sets.append(
      NamedSet(
        name: "nodeport-addresses", keyType: [.ipv4Addr], flags: [.interval],
        elements: [SetElement(key: [.prefix(CIDR("10.0.0.0/8")!)])]))
    let a = try NetNS()
    let b = try NetNS()
    defer {
      a.delete()
      b.delete()
    }
    let backend = try NFTBackend(namespacePath: a.path)
    _ = try backend.sync(rs)
    var partials = 0
    for step in 0..<25 {
      Self.mutate(&rs, &rng, step: step)
      let report = try backend.sync(rs)
      if report.kind == .partial { partials += 1 }
    }
    #expect(partials > 5)
    let full = try NFTBackend(namespacePath: b.path)
    _ = try full.sync(rs)
    #expect(sortedListing(try a.nftListRuleset()) == sortedListing(try b.nftListRuleset()))
    #expect(try backend.diffAgainstKernel(rs).isEmpty)
  }
}

/// Transaction shape without a kernel.
struct PlanTests {
  @Test func partialPlanSizeDoesNotDependOnTableSize() throws {
    func changeOne(_ n: Int) throws -> Transaction {
      let base = Samples.services(n)
      var changed = base
      let i = changed.tables[0].chains.firstIndex { $0.name == "svc-7" }!
      changed.tables[0].chains[i].rules = Samples.endpointRules(
        service: 7, endpoints: 10, generation: 1)
      return try NFTBackend.plan(from: base, to: changed, full: false)
    }
    let small = try changeOne(100)
    let large = try changeOne(10_000)
    #expect(small.kind == .partial)
    #expect(small.messageCount == 11)  // flush + 10 rules
    #expect(small.messageCount == large.messageCount)
    #expect(small.byteCount == large.byteCount)
    #expect(small.messages.first == "flush chain svc-7 of table ip nftproxy")
  }

  @Test func fullPlanCreatesBeforeReferencing() throws {
    let plan = try NFTBackend.plan(from: nil, to: Samples.everything(), full: true)
    #expect(plan.kind == .full)
    #expect(
      plan.messages.prefix(3) == [
        "ensure table ip nftproxy exists", "delete table ip nftproxy", "add table ip nftproxy",
      ])
    let v4 = plan.messages.prefix { !$0.hasPrefix("ensure table ip6") }
    let firstRule = v4.firstIndex { $0.hasPrefix("add rule") }!
    let lastChain = v4.lastIndex { $0.hasPrefix("add chain") }!
    let firstElements = v4.firstIndex { $0.contains("element(s)") }!
    #expect(lastChain < firstElements)
    #expect(lastChain < firstRule)
  }

  @Test func bigElementListsAreSplit() throws {
    let plan = try NFTBackend.plan(
      from: nil, to: Samples.services(10_000, endpoints: 1), full: true)
    let elementMessages = plan.messages.filter { $0.contains("element(s) to set service-ips") }
    #expect(elementMessages.count > 1)
  }
}

/// The kernel objects themselves (set flags, key types and lengths, userdata, expressions and
/// their attributes, element keys, flags and userdata) are the same as those `nft -f` creates.
@Suite(.serialized) struct KernelObjectTests {
  @Test(.enabled(if: KernelTests.enabled))
  func kernelObjectsEqualThoseNftCreates() throws {
    let a = try NetNS()
    let b = try NetNS()
    defer {
      a.delete()
      b.delete()
    }
    let rs = Samples.everything()
    let ours = try NFTBackend(namespacePath: a.path)
    _ = try ours.sync(rs)
    try b.nftLoad(NFTText.render(rs))
    let theirs = try NFTBackend(namespacePath: b.path)
    let names: [(TableFamily, String)] = [(.ip, "nftproxy"), (.ip6, "nftproxy")]
    var x = try ours.dump(tables: names)
    var y = try theirs.dump(tables: names)
    func sortElements(_ d: inout [NFTBackend.TableDump]) {
      for t in d.indices {
        for s in d[t].sets.indices {
          d[t].sets[s].elements.sort {
            $0.key.lexicographicallyPrecedes($1.key)
              || ($0.key == $1.key && ($0.flags ?? 0) < ($1.flags ?? 0))
          }
        }
      }
    }
    sortElements(&x)
    sortElements(&y)
    #expect(x.count == 2)
    for (p, q) in zip(x, y) {
      #expect(p.table == q.table)
      #expect(p.chains == q.chains)
      for (s, t) in zip(p.sets, q.sets) {
        #expect(s.set == t.set)
        #expect(s.elements == t.elements, "elements of set \(s.set.name)")
      }
      for (chain, rules) in p.rules {
        #expect(rules == q.rules[chain], "rules of chain \(chain)")
      }
      #expect(p.rules.keys.sorted() == q.rules.keys.sorted())
    }
  }
}

/// 10,000 services × 10 endpoints through one batch, then a one-endpoint partial sync. Slow
/// (the kernel commit dominates), so only in CI or with `NFTPROXY_SCALE_TESTS=1`.
@Test(
  .enabled(
    if: KernelTests.enabled
      && (KernelTests.inCI || ProcessInfo.processInfo.environment["NFTPROXY_SCALE_TESTS"] == "1")))
func scaleTenThousandServices() throws {
  let ns = try NetNS()
  defer { ns.delete() }
  let backend = try NFTBackend(namespacePath: ns.path)
  var rs = Samples.services(10_000)
  let full = try backend.sync(rs)
  print("scale: \(full)")
  #expect(full.kind == .full)
  let i = rs.tables[0].chains.firstIndex { $0.name == "svc-42" }!
  rs.tables[0].chains[i].rules = Samples.endpointRules(service: 42, endpoints: 10, generation: 1)
  let partial = try backend.sync(rs)
  print("scale: \(partial)")
  #expect(partial.kind == .partial)
  #expect(partial.messageCount == 11)
}

@Suite(.serialized) struct KernelGenerationTests {
  /// A batch computed against an old generation is refused as a whole (ERESTART).
  @Test(.enabled(if: KernelTests.enabled))
  func staleGenerationIsRefused() throws {
    let ns = try NetNS()
    defer { ns.delete() }
    let backend = try NFTBackend(namespacePath: ns.path)
    let gen = try backend.generation()
    try ns.nftLoad("table ip other {\n}\n")
    let ops = Diff.fullSync(Samples.services(2))
    #expect(
      throws: NFTError.rejected(operation: "begin transaction", errno: ERESTART, otherErrors: 0)
    ) {
      try backend.apply(ops, genid: gen)
    }
    #expect(!(try ns.nftListRuleset().contains("nftproxy")))
    try backend.apply(ops, genid: try backend.generation())
    #expect(try ns.nftListRuleset().contains("nftproxy"))
  }

  /// Any foreign commit (even to another table) makes the next sync full; our own commits do not.
  @Test(.enabled(if: KernelTests.enabled))
  func foreignCommitForcesFullSync() throws {
    let ns = try NetNS()
    defer { ns.delete() }
    let backend = try NFTBackend(namespacePath: ns.path)
    var rs = Samples.services(5)
    _ = try backend.sync(rs)
    rs.tables[0].chains[3].rules.removeLast()
    #expect(try backend.sync(rs).kind == .partial)
    try ns.nftLoad("table ip other {\n}\n")
    rs.tables[0].chains[3].rules.removeLast()
    let report = try backend.sync(rs)
    #expect(report.kind == .full)
    #expect(try backend.diffAgainstKernel(rs).isEmpty)
  }
}
