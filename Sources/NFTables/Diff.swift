/// One step of a kernel transaction. A list of these, in order, is what a sync sends: the netlink
/// layer encodes each one as one (or, for large element lists, several) netlink messages.
///
/// Set and chain payloads carry only their definition; elements and rules come as their own
/// operations. For interval sets, `addElements` always targets an empty set (it follows the
/// set's creation or a `flushSet`), because the kernel encoding of intervals depends on it.
public enum NFTOperation: Sendable, Equatable {
  /// `add table` with the bare name: creates the table if missing, changes nothing if present.
  case ensureTable(TableFamily, String)
  /// Creates the table with its comment (no contents).
  case addTable(Table)
  case deleteTable(TableFamily, String)
  case addSet(TableFamily, table: String, NamedSet)
  case deleteSet(TableFamily, table: String, set: String)
  /// Removes every element of a set.
  case flushSet(TableFamily, table: String, set: NamedSet)
  case addElements(TableFamily, table: String, set: NamedSet, [SetElement])
  case deleteElements(TableFamily, table: String, set: NamedSet, [SetElement])
  case addChain(TableFamily, table: String, Chain)
  /// Removes every rule of a chain.
  case flushChain(TableFamily, table: String, chain: String)
  case deleteChain(TableFamily, table: String, chain: String)
  /// Appends a rule to a chain.
  case addRule(TableFamily, table: String, chain: String, Rule)

  /// What the operation does, naming the object ("add rule to chain X of table ip nftproxy").
  public var summary: String {
    func t(_ f: TableFamily, _ n: String) -> String { "table \(f.rawValue) \(n)" }
    switch self {
    case .ensureTable(let f, let n): return "ensure \(t(f, n)) exists"
    case .addTable(let tb): return "add \(t(tb.family, tb.name))"
    case .deleteTable(let f, let n): return "delete \(t(f, n))"
    case .addSet(let f, let tb, let s):
      return "add \(s.isMap ? "map" : "set") \(s.name) to \(t(f, tb))"
    case .deleteSet(let f, let tb, let s): return "delete set \(s) of \(t(f, tb))"
    case .flushSet(let f, let tb, let s): return "flush set \(s.name) of \(t(f, tb))"
    case .addElements(let f, let tb, let s, let e):
      return "add \(e.count) element(s) to set \(s.name) of \(t(f, tb))"
    case .deleteElements(let f, let tb, let s, let e):
      return "delete \(e.count) element(s) from set \(s.name) of \(t(f, tb))"
    case .addChain(let f, let tb, let c): return "add chain \(c.name) to \(t(f, tb))"
    case .flushChain(let f, let tb, let c): return "flush chain \(c) of \(t(f, tb))"
    case .deleteChain(let f, let tb, let c): return "delete chain \(c) of \(t(f, tb))"
    case .addRule(let f, let tb, let c, _): return "add rule to chain \(c) of \(t(f, tb))"
    }
  }
}

/// Added and removed elements of one set. A changed element (other data or comment) appears in
/// both lists. `reload` means the set is flushed and refilled (interval sets).
public struct SetElementsDiff: Sendable, Equatable {
  public var set: String
  public var added: [SetElement]
  public var removed: [SetElement]
  public var reload: Bool
}

/// How one table differs between two rule sets.
public struct TableDiff: Sendable, Equatable {
  public enum Change: Sendable, Equatable {
    case added
    case removed
    /// Something that cannot be changed in place (a table or chain comment, a base chain's hook,
    /// a set's definition) differs: the table is replaced as a whole, in the same transaction.
    case replaced(reason: String)
    case changed
  }
  public var family: TableFamily
  public var name: String
  public var change: Change
  public var addedSets: [String] = []
  public var removedSets: [String] = []
  public var addedChains: [String] = []
  public var removedChains: [String] = []
  /// Chains whose rules changed (flushed and refilled).
  public var changedChains: [String] = []
  public var elements: [SetElementsDiff] = []

  public var isEmpty: Bool {
    change == .changed && addedSets.isEmpty && removedSets.isEmpty && addedChains.isEmpty
      && removedChains.isEmpty && changedChains.isEmpty && elements.isEmpty
  }
}

/// The difference between two rule sets, with a printable summary.
public struct RulesetDiff: Sendable, Equatable, CustomStringConvertible {
  /// Only tables that differ.
  public var tables: [TableDiff]

  public var isEmpty: Bool { tables.isEmpty }

  public var description: String {
    if tables.isEmpty { return "no changes\n" }
    var out = ""
    for t in tables {
      let head = "table \(t.family.rawValue) \(t.name)"
      switch t.change {
      case .added: out += "+ \(head)\n"
      case .removed: out += "- \(head)\n"
      case .replaced(let reason): out += "~ \(head): replaced (\(reason))\n"
      case .changed: out += "~ \(head)\n"
      }
      for s in t.addedSets { out += "\t+ set \(s)\n" }
      for s in t.removedSets { out += "\t- set \(s)\n" }
      for c in t.addedChains { out += "\t+ chain \(c)\n" }
      for c in t.removedChains { out += "\t- chain \(c)\n" }
      for c in t.changedChains { out += "\t~ chain \(c) (rules changed)\n" }
      for e in t.elements {
        out +=
          "\t~ set \(e.set): \(e.added.count) added, \(e.removed.count) removed\(e.reload ? " (reloaded)" : "")\n"
        for r in e.removed { out += "\t\t- \(Diff.describe(r))\n" }
        for a in e.added { out += "\t\t+ \(Diff.describe(a))\n" }
      }
    }
    return out
  }
}

/// Pure comparison of rule sets and the transactions that turn one into the other.
public enum Diff {
  /// Compares two rule sets table by table (matched by family and name).
  public static func compare(_ old: Ruleset, _ new: Ruleset) -> RulesetDiff {
    var out: [TableDiff] = []
    let oldTables = Dictionary(old.tables.map { (Key($0), $0) }, uniquingKeysWith: { a, _ in a })
    let newKeys = Set(new.tables.map { Key($0) })
    for t in new.tables {
      if let o = oldTables[Key(t)] {
        let d = compare(table: o, t)
        if !d.isEmpty { out.append(d) }
      } else {
        var d = TableDiff(family: t.family, name: t.name, change: .added)
        d.addedSets = t.sets.map(\.name)
        d.addedChains = t.chains.map(\.name)
        out.append(d)
      }
    }
    for t in old.tables where !newKeys.contains(Key(t)) {
      out.append(TableDiff(family: t.family, name: t.name, change: .removed))
    }
    return RulesetDiff(tables: out)
  }

  /// The operations of a partial sync from `old` (what the kernel holds) to `new`.
  /// Empty when nothing changed.
  public static func operations(from old: Ruleset, to new: Ruleset) -> [NFTOperation] {
    operations(for: compare(old, new), old: old, new: new)
  }

  /// The operations that apply a computed diff (`diff` must come from `compare(old, new)`).
  public static func operations(for diff: RulesetDiff, old: Ruleset, new: Ruleset)
    -> [NFTOperation]
  {
    var ops: [NFTOperation] = []
    let newTables = Dictionary(new.tables.map { (Key($0), $0) }, uniquingKeysWith: { a, _ in a })
    let oldTables = Dictionary(old.tables.map { (Key($0), $0) }, uniquingKeysWith: { a, _ in a })
    for d in diff.tables {
      let key = Key(family: d.family, name: d.name)
      switch d.change {
      case .removed:
        ops.append(.ensureTable(d.family, d.name))
        ops.append(.deleteTable(d.family, d.name))
      case .added:
        create(newTables[key]!, into: &ops)
      case .replaced:
        replace(newTables[key]!, into: &ops)
      case .changed:
        partial(d, old: oldTables[key]!, new: newTables[key]!, into: &ops)
      }
    }
    return ops
  }

  /// The operations of a full sync: every table of `new` is replaced atomically (created if
  /// missing, deleted and recreated if present), and tables of `previous` that `new` no longer
  /// has are deleted. A table that does not exist does not make the transaction fail.
  public static func fullSync(_ new: Ruleset, previous: Ruleset? = nil) -> [NFTOperation] {
    var ops: [NFTOperation] = []
    for t in new.tables { replace(t, into: &ops) }
    let keep = Set(new.tables.map { Key($0) })
    for t in previous?.tables ?? [] where !keep.contains(Key(t)) {
      ops.append(.ensureTable(t.family, t.name))
      ops.append(.deleteTable(t.family, t.name))
    }
    return ops
  }

  /// One element as nft writes it (`KEY [comment "..."] [: DATA]`).
  public static func describe(_ e: SetElement) -> String {
    var s = e.key.map(NFTText.value).joined(separator: " . ")
    if let c = e.comment { s += " comment \(NFTText.quote(c))" }
    switch e.data {
    case .none: break
    case .verdict(let v): s += " : \(NFTText.verdict(v))"
    case .value(let vs): s += " : \(vs.map(NFTText.value).joined(separator: " . "))"
    }
    return s
  }

  // MARK: - internals

  struct Key: Hashable {
    var family: TableFamily
    var name: String
    init(family: TableFamily, name: String) {
      self.family = family
      self.name = name
    }
    init(_ t: Table) { self.init(family: t.family, name: t.name) }
  }

  /// A set without its elements — except for constant sets, whose elements cannot change
  /// without recreating the set (and whose kernel size is their element count).
  static func definition(_ s: NamedSet) -> NamedSet {
    if s.flags.contains(.constant) { return s }
    var d = s
    d.elements = []
    return d
  }

  static func definition(_ c: Chain) -> Chain {
    var d = c
    d.rules = []
    return d
  }

  static func compare(table o: Table, _ n: Table) -> TableDiff {
    var d = TableDiff(family: n.family, name: n.name, change: .changed)
    if o.comment != n.comment {
      d.change = .replaced(reason: "table comment changed")
      return d
    }
    let oldSets = Dictionary(o.sets.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    let newSetNames = Set(n.sets.map(\.name))
    for s in n.sets {
      guard let os = oldSets[s.name] else {
        d.addedSets.append(s.name)
        continue
      }
      if definition(os) != definition(s) {
        d.change = .replaced(reason: "definition of set \(s.name) changed")
        return d
      }
      if let e = elementsDiff(os, s) { d.elements.append(e) }
    }
    d.removedSets = o.sets.map(\.name).filter { !newSetNames.contains($0) }

    let oldChains = Dictionary(o.chains.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    let newChainNames = Set(n.chains.map(\.name))
    for c in n.chains {
      guard let oc = oldChains[c.name] else {
        d.addedChains.append(c.name)
        continue
      }
      if oc.base != c.base || oc.comment != c.comment {
        d.change = .replaced(reason: "definition of chain \(c.name) changed")
        return d
      }
      if oc.rules != c.rules { d.changedChains.append(c.name) }
    }
    d.removedChains = o.chains.map(\.name).filter { !newChainNames.contains($0) }
    return d
  }

  static func elementsDiff(_ o: NamedSet, _ n: NamedSet) -> SetElementsDiff? {
    if o.elements == n.elements { return nil }
    var oldByKey: [[Value]: SetElement] = [:]
    for e in o.elements { oldByKey[e.key] = e }
    var newByKey: [[Value]: SetElement] = [:]
    for e in n.elements { newByKey[e.key] = e }
    var added: [SetElement] = []
    var seen = Set<[Value]>()
    for e in n.elements where seen.insert(e.key).inserted {
      let latest = newByKey[e.key]!
      if oldByKey[e.key] != latest { added.append(latest) }
    }
    var removed: [SetElement] = []
    seen = []
    for e in o.elements where seen.insert(e.key).inserted {
      let old = oldByKey[e.key]!
      if newByKey[e.key] != old { removed.append(old) }
    }
    if added.isEmpty && removed.isEmpty { return nil }
    if n.flags.contains(.interval) {
      return SetElementsDiff(set: n.name, added: n.elements, removed: o.elements, reload: true)
    }
    return SetElementsDiff(set: n.name, added: added, removed: removed, reload: false)
  }

  /// Creates a table that does not exist, with all its contents.
  static func create(_ t: Table, into ops: inout [NFTOperation]) {
    var def = t
    def.sets = []
    def.chains = []
    ops.append(.addTable(def))
    for s in t.sets { ops.append(.addSet(t.family, table: t.name, definition(s))) }
    for c in t.chains { ops.append(.addChain(t.family, table: t.name, definition(c))) }
    for s in t.sets where !s.elements.isEmpty {
      ops.append(.addElements(t.family, table: t.name, set: definition(s), s.elements))
    }
    for c in t.chains {
      for r in c.rules { ops.append(.addRule(t.family, table: t.name, chain: c.name, r)) }
    }
  }

  /// Replaces a table that may or may not exist: add (bare), delete, create — one transaction.
  static func replace(_ t: Table, into ops: inout [NFTOperation]) {
    ops.append(.ensureTable(t.family, t.name))
    ops.append(.deleteTable(t.family, t.name))
    create(t, into: &ops)
  }

  static func partial(_ d: TableDiff, old: Table, new: Table, into ops: inout [NFTOperation]) {
    let f = new.family
    let tn = new.name
    let newSets = Dictionary(new.sets.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    let oldSets = Dictionary(old.sets.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    let newChains = Dictionary(new.chains.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    // 1. New sets and chains, so that elements and rules below can reference them.
    for s in d.addedSets { ops.append(.addSet(f, table: tn, definition(newSets[s]!))) }
    for c in d.addedChains { ops.append(.addChain(f, table: tn, definition(newChains[c]!))) }
    // 2. Remove references: old elements, then the rules of changed and removed chains.
    for e in d.elements {
      let def = definition(newSets[e.set]!)
      if e.reload {
        ops.append(.flushSet(f, table: tn, set: def))
      } else if !e.removed.isEmpty {
        ops.append(.deleteElements(f, table: tn, set: def, e.removed))
      }
    }
    for c in d.changedChains + d.removedChains { ops.append(.flushChain(f, table: tn, chain: c)) }
    // 3. New elements and rules.
    for s in d.addedSets where !newSets[s]!.elements.isEmpty {
      let set = newSets[s]!
      ops.append(.addElements(f, table: tn, set: definition(set), set.elements))
    }
    for e in d.elements where !e.added.isEmpty {
      ops.append(.addElements(f, table: tn, set: definition(newSets[e.set]!), e.added))
    }
    let refill = Set(d.changedChains + d.addedChains)
    for c in new.chains where refill.contains(c.name) {
      for r in c.rules { ops.append(.addRule(f, table: tn, chain: c.name, r)) }
    }
    // 4. Objects nothing references any more.
    for c in d.removedChains { ops.append(.deleteChain(f, table: tn, chain: c)) }
    for s in d.removedSets where oldSets[s] != nil { ops.append(.deleteSet(f, table: tn, set: s)) }
  }
}
