import IPAddr
import NFTables
import Testing

struct DiffTests {
  static func element(_ a: String, _ port: UInt16, _ v: Verdict, comment: String? = nil)
    -> SetElement
  {
    SetElement(
      key: [.address(IPAddress(a)!), .proto(.tcp), .port(port)], data: .verdict(v), comment: comment
    )
  }

  static func base() -> Ruleset {
    Ruleset(tables: [
      Table(
        family: .ip, name: "t", comment: "c",
        sets: [
          NamedSet(
            name: "vmap", keyType: [.ipv4Addr, .inetProto, .inetService], dataType: .verdict,
            elements: [
              element("10.0.0.1", 80, .goto("svc-a")), element("10.0.0.2", 80, .goto("svc-b")),
            ]),
          NamedSet(
            name: "ranges", keyType: [.ipv4Addr], flags: [.interval],
            elements: [SetElement(key: [.prefix(CIDR("10.0.0.0/8")!)])]),
        ],
        chains: [
          Chain(
            name: "pre", base: BaseChainSpec(type: .nat, hook: .prerouting, priority: -100),
            rules: [Rule([.vmap([.daddr(.ip), .l4proto, .thDport], map: "vmap")])]),
          Chain(name: "svc-a", rules: [Rule([.dnat(IPAddress("10.1.0.1")!, port: 80)])]),
          Chain(name: "svc-b", rules: [Rule([.dnat(IPAddress("10.1.0.2")!, port: 80)])]),
        ])
    ])
  }

  @Test func identicalRulesetsHaveNoDiffAndNoOperations() {
    #expect(Diff.compare(Self.base(), Self.base()).isEmpty)
    #expect(Diff.operations(from: Self.base(), to: Self.base()).isEmpty)
    #expect(Diff.compare(Self.base(), Self.base()).description == "no changes\n")
  }

  @Test func elementOrderDoesNotMatter() {
    var other = Self.base()
    other.tables[0].sets[0].elements.reverse()
    #expect(Diff.compare(Self.base(), other).isEmpty)
  }

  @Test func changedRulesFlushAndRefillOneChain() {
    var new = Self.base()
    new.tables[0].chains[1].rules = [
      Rule([.dnat(IPAddress("10.1.0.9")!, port: 80)]), Rule([.counter]),
    ]
    let ops = Diff.operations(from: Self.base(), to: new)
    #expect(
      ops.map(\.summary) == [
        "flush chain svc-a of table ip t",
        "add rule to chain svc-a of table ip t",
        "add rule to chain svc-a of table ip t",
      ])
    let d = Diff.compare(Self.base(), new)
    #expect(d.tables.count == 1)
    #expect(d.tables[0].changedChains == ["svc-a"])
    #expect(d.description.contains("~ chain svc-a (rules changed)"))
  }

  @Test func changedMapElementIsDeletedAndAdded() {
    var new = Self.base()
    new.tables[0].sets[0].elements[0] = Self.element("10.0.0.1", 80, .goto("svc-b"))
    let ops = Diff.operations(from: Self.base(), to: new)
    guard ops.count == 2, case .deleteElements(_, _, _, let removed) = ops[0],
      case .addElements(_, _, _, let added) = ops[1]
    else {
      Issue.record("unexpected operations \(ops.map(\.summary))")
      return
    }
    #expect(removed == [Self.element("10.0.0.1", 80, .goto("svc-a"))])
    #expect(added == [Self.element("10.0.0.1", 80, .goto("svc-b"))])
    // A comment change is a change too.
    var commented = Self.base()
    commented.tables[0].sets[0].elements[1].comment = "now with comment"
    #expect(Diff.operations(from: Self.base(), to: commented).count == 2)
  }

  @Test func newServiceCreatesChainBeforeElementAndRules() {
    var new = Self.base()
    new.tables[0].chains.append(
      Chain(name: "svc-c", rules: [Rule([.dnat(IPAddress("10.1.0.3")!, port: 80)])]))
    new.tables[0].sets[0].elements.append(Self.element("10.0.0.3", 80, .goto("svc-c")))
    let s = Diff.operations(from: Self.base(), to: new).map(\.summary)
    #expect(
      s == [
        "add chain svc-c to table ip t",
        "add 1 element(s) to set vmap of table ip t",
        "add rule to chain svc-c of table ip t",
      ])
  }

  @Test func removedServiceDropsReferencesBeforeTheChain() {
    var new = Self.base()
    new.tables[0].chains.removeAll { $0.name == "svc-b" }
    new.tables[0].sets[0].elements.removeAll { $0.data == .verdict(.goto("svc-b")) }
    let s = Diff.operations(from: Self.base(), to: new).map(\.summary)
    #expect(
      s == [
        "delete 1 element(s) from set vmap of table ip t",
        "flush chain svc-b of table ip t",
        "delete chain svc-b of table ip t",
      ])
    #expect(Diff.compare(Self.base(), new).tables[0].removedChains == ["svc-b"])
  }

  @Test func intervalSetIsReloaded() {
    var new = Self.base()
    new.tables[0].sets[1].elements.append(SetElement(key: [.prefix(CIDR("192.168.0.0/16")!)]))
    let ops = Diff.operations(from: Self.base(), to: new)
    guard ops.count == 2, case .flushSet = ops[0], case .addElements(_, _, _, let all) = ops[1]
    else {
      Issue.record("unexpected operations \(ops.map(\.summary))")
      return
    }
    #expect(all.count == 2)
  }

  @Test func setsAreCreatedFirstAndDeletedLast() {
    var new = Self.base()
    new.tables[0].sets.removeAll { $0.name == "ranges" }
    new.tables[0].sets.append(
      NamedSet(name: "extra", keyType: [.ipv4Addr], elements: [SetElement(key: [.address(.v4(1))])])
    )
    new.tables[0].chains[1].rules.insert(
      Rule([.lookup([.saddr(.ip)], set: "extra", negate: false), .verdict(.drop)]), at: 0)
    let s = Diff.operations(from: Self.base(), to: new).map(\.summary)
    #expect(s.first == "add set extra to table ip t")
    #expect(s.last == "delete set ranges of table ip t")
    #expect(
      s.firstIndex(of: "add 1 element(s) to set extra of table ip t")! < s.firstIndex(
        of: "add rule to chain svc-a of table ip t")!)
  }

  @Test func unchangeableDefinitionsReplaceTheTable() {
    var new = Self.base()
    new.tables[0].chains[1].comment = "now commented"
    let d = Diff.compare(Self.base(), new)
    #expect(d.tables[0].change == .replaced(reason: "definition of chain svc-a changed"))
    let s = Diff.operations(from: Self.base(), to: new).map(\.summary)
    #expect(s.prefix(3) == ["ensure table ip t exists", "delete table ip t", "add table ip t"])
    #expect(s.filter { $0.hasPrefix("add rule") }.count == 3)

    var set = Self.base()
    set.tables[0].sets[1].timeout = 5
    #expect(
      Diff.compare(Self.base(), set).tables[0].change
        == .replaced(reason: "definition of set ranges changed"))
  }

  @Test func addedAndRemovedTables() {
    var new = Self.base()
    new.tables.append(Table(family: .ip6, name: "t"))
    new.tables.removeFirst()
    let d = Diff.compare(Self.base(), new)
    #expect(d.tables.map(\.change) == [.added, .removed])
    let s = Diff.operations(from: Self.base(), to: new).map(\.summary)
    #expect(s == ["add table ip6 t", "ensure table ip t exists", "delete table ip t"])
  }

  @Test func fullSyncReplacesEveryTableAndDropsOldOnes() {
    let old = Ruleset(tables: [Table(family: .ip6, name: "gone")])
    let s = Diff.fullSync(Self.base(), previous: old).map(\.summary)
    #expect(s.prefix(3) == ["ensure table ip t exists", "delete table ip t", "add table ip t"])
    #expect(s.suffix(2) == ["ensure table ip6 gone exists", "delete table ip6 gone"])
    let lastChain = s.lastIndex { $0.hasPrefix("add chain") }!
    let firstElements = s.firstIndex { $0.contains("element(s)") }!
    let firstRule = s.firstIndex { $0.hasPrefix("add rule") }!
    #expect(lastChain < firstElements && firstElements < firstRule)
  }

  @Test func summaryListsElementChanges() {
    var new = Self.base()
    new.tables[0].sets[0].elements.append(Self.element("10.0.0.9", 443, .accept, comment: "x"))
    let text = Diff.compare(Self.base(), new).description
    #expect(text.contains("~ table ip t"))
    #expect(text.contains("~ set vmap: 1 added, 0 removed"))
    #expect(text.contains("+ 10.0.0.9 . tcp . 443 comment \"x\" : accept"))
  }
}
