import IPAddr
import NFTables

/// Turns kernel objects read back over netlink into the IR — the inverse of `Encoder` for
/// everything the encoder produces. A rule it cannot decode (written by someone else) becomes a
/// rule without statements whose comment starts with `Decoder.foreignMarker`, so that a
/// comparison reports its chain as changed.
enum Decoder {
  static let foreignMarker = "nftproxy: undecodable rule:"

  static func table(_ d: NFTBackend.TableDump) -> Table {
    var out = Table(
      family: d.table.family, name: d.table.name, comment: Udata.comment(in: d.table.userdata))
    for s in d.sets { out.sets.append(set(s.set, s.elements)) }
    for c in d.chains {
      var ch = chain(c)
      ch.rules = (d.rules[c.name] ?? []).map(rule)
      out.chains.append(ch)
    }
    return out
  }

  static func chain(_ c: K.Chain) -> Chain {
    var out = Chain(name: c.name, comment: Udata.comment(in: c.userdata))
    if let h = c.hooknum, let type = c.type.flatMap(ChainType.init(rawValue:)), let hook = hook(h) {
      out.base = BaseChainSpec(
        type: type, hook: hook, priority: Int(c.priority ?? 0),
        policy: c.policy == 0 ? .drop : .accept)
    }
    return out
  }

  static func hook(_ n: UInt32) -> Hook? {
    switch n {
    case 0: return .prerouting
    case 1: return .input
    case 2: return .forward
    case 3: return .output
    case 4: return .postrouting
    default: return nil
    }
  }

  static func dataType(_ id: UInt32) -> DataType? {
    switch id {
    case 7: return .ipv4Addr
    case 8: return .ipv6Addr
    case 12: return .inetProto
    case 13: return .inetService
    case 19: return .mark
    case 0xffff_ff00, 1: return .verdict
    default: return nil
    }
  }

  /// Splits nft's concatenated type number (6 bits per component) into its components.
  static func keyTypes(_ id: UInt32) -> [DataType] {
    var v = id
    var parts: [DataType] = []
    while v != 0 {
      guard let t = dataType(v & 0x3f) else { return [] }
      parts.insert(t, at: 0)
      v >>= 6
    }
    return parts
  }

  static func set(_ s: K.Set, _ elements: [K.Element]) -> NamedSet {
    var flags: [SetFlag] = []
    if s.flags & K.SetFlag.constant != 0 { flags.append(.constant) }
    if s.flags & K.SetFlag.interval != 0 { flags.append(.interval) }
    if s.flags & K.SetFlag.timeout != 0 { flags.append(.timeout) }
    if s.flags & K.SetFlag.eval != 0 { flags.append(.dynamic) }
    var out = NamedSet(
      name: s.name, keyType: keyTypes(s.keyType),
      dataType: s.flags & K.SetFlag.map != 0 ? s.dataType.flatMap(dataType) : nil,
      flags: flags.sorted(),
      timeout: s.timeoutMs.map { Int($0 / 1000) }, size: s.size.map(Int.init),
      comment: Udata.comment(in: s.userdata, type: 7))
    if out.flags.contains(.interval) {
      out.elements = intervals(elements, out)
    } else {
      out.elements = elements.compactMap { element($0, out) }
    }
    out.elements.sort { $0.key.lexicographicallyPrecedes($1.key) }
    return out
  }

  static func element(_ k: K.Element, _ s: NamedSet) -> SetElement? {
    guard let key = values(k.key, s.keyType) else { return nil }
    var e = SetElement(key: key, comment: Udata.comment(in: k.userdata))
    if let v = k.verdict {
      e.data = verdict(v.code, v.chain).map { .verdict($0) }
    } else if let d = k.data, let t = s.dataType, let v = value(d, t) {
      e.data = .value([v])
    }
    return e
  }

  static func values(_ bytes: [UInt8], _ types: [DataType]) -> [Value]? {
    if types.count == 1 { return value(bytes, types[0]).map { [$0] } }
    var out: [Value] = []
    var off = 0
    for t in types {
      let n = t.byteLength
      guard off + n <= bytes.count, let v = value(Array(bytes[off..<(off + n)]), t) else {
        return nil
      }
      out.append(v)
      off += Encoder.align4(n)
    }
    return out
  }

  static func le32(_ b: [UInt8]) -> UInt32 {
    var v: UInt32 = 0
    for (i, x) in b.prefix(4).enumerated() { v |= UInt32(x) << UInt32(8 * i) }
    return v
  }

  static func address(_ b: [UInt8]) -> IPAddress? {
    if b.count == 4 {
      return .v4(b.reduce(0) { $0 << 8 | UInt32($1) })
    }
    if b.count == 16 {
      let hi = b[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
      let lo = b[8..<16].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
      return .v6(hi, lo)
    }
    return nil
  }

  static func value(_ b: [UInt8], _ t: DataType) -> Value? {
    switch t {
    case .ipv4Addr, .ipv6Addr:
      guard b.count == t.byteLength else { return nil }
      return address(b).map { .address($0) }
    case .inetProto:
      guard let n = b.first else { return nil }
      return L4Proto.allCases.first { $0.number == n }.map { .proto($0) } ?? .integer(UInt32(n))
    case .inetService:
      guard b.count >= 2 else { return nil }
      return .port(UInt16(b[0]) << 8 | UInt16(b[1]))
    case .mark:
      return .integer(le32(b))
    case .verdict:
      return nil
    }
  }

  static func verdict(_ code: Int32, _ chain: String?) -> Verdict? {
    switch code {
    case K.VerdictCode.accept: return .accept
    case K.VerdictCode.drop: return .drop
    case K.VerdictCode.return: return .return
    case K.VerdictCode.jump: return chain.map { .jump($0) }
    case K.VerdictCode.goto: return chain.map { .goto($0) }
    default: return nil
    }
  }

  /// Rebuilds prefixes from start/end element pairs; ignores nft's leading end element at zero.
  static func intervals(_ elements: [K.Element], _ s: NamedSet) -> [SetElement] {
    let sorted = elements.sorted {
      if $0.key != $1.key { return $0.key.lexicographicallyPrecedes($1.key) }
      return ($0.flags ?? 0) & K.elementIntervalEnd > ($1.flags ?? 0) & K.elementIntervalEnd
    }
    var out: [SetElement] = []
    var i = 0
    while i < sorted.count {
      let e = sorted[i]
      i += 1
      if (e.flags ?? 0) & K.elementIntervalEnd != 0 { continue }
      var end: [UInt8]? = nil
      if i < sorted.count, (sorted[i].flags ?? 0) & K.elementIntervalEnd != 0 {
        end = sorted[i].key
        i += 1
      }
      guard let start = address(e.key) else { continue }
      let bits = e.key.count * 8
      var found: CIDR? = nil
      for p in 0...bits {
        let c = CIDR(address: start, prefixLength: p)
        if c.address == start && Encoder.rangeEnd(e.key, prefixLength: p) == end {
          found = c
          break
        }
      }
      guard let cidr = found else { continue }
      out.append(SetElement(key: [.prefix(cidr)], comment: Udata.comment(in: e.userdata)))
    }
    return out
  }

  // MARK: rules

  /// What a register holds while decoding one statement.
  private enum Source {
    case selector(Selector)
    /// The first `bytes` bytes of an address (a byte-aligned prefix match).
    case partial(Selector, bytes: Int)
    case ct(K.CtKey)
    case fib(UInt32)
    case masked(Source2, mask: [UInt8], xor: [UInt8])
    case immediate([UInt8])
  }

  /// A register source that can be masked.
  private enum Source2 {
    case selector(Selector)
    case ct(K.CtKey)
  }

  static func rule(_ r: K.Rule) -> Rule {
    let comment = Udata.comment(in: r.userdata)
    guard !r.foreign, let statements = statements(r.exprs) else {
      return Rule([], comment: "\(foreignMarker) \(r.exprs.count) expressions")
    }
    return Rule(statements, comment: comment)
  }

  private static func selector(_ base: K.PayloadBase, _ offset: UInt32, _ len: UInt32) -> Source? {
    switch (base, offset) {
    case (.transport, 2) where len == 2: return .selector(.thDport)
    case (.network, 12), (.network, 16):
      let sel: Selector = offset == 12 ? .saddr(.ip) : .daddr(.ip)
      return len == 4 ? .selector(sel) : (len < 4 ? .partial(sel, bytes: Int(len)) : nil)
    case (.network, 8), (.network, 24):
      let sel: Selector = offset == 8 ? .saddr(.ip6) : .daddr(.ip6)
      return len == 16 ? .selector(sel) : (len < 16 ? .partial(sel, bytes: Int(len)) : nil)
    default: return nil
    }
  }

  static func statements(_ exprs: [K.Expr]) -> [Statement]? {
    var out: [Statement] = []
    var regs: [K.Reg: Source] = [:]
    var order: [K.Reg] = []
    func set(_ r: K.Reg, _ s: Source) {
      if regs[r] == nil { order.append(r) }
      regs[r] = s
    }
    func reset() {
      regs = [:]
      order = []
    }
    func selectors() -> [Selector]? {
      var keys: [Selector] = []
      for r in order {
        guard case .selector(let s)? = regs[r] else { return nil }
        keys.append(s)
      }
      return keys
    }
    for x in exprs {
      switch x {
      case .payload(let base, let offset, let len, let dreg):
        guard let s = selector(base, offset, len) else { return nil }
        set(dreg, s)
      case .meta(let key, let dreg):
        set(dreg, .selector(key == .mark ? .mark : .l4proto))
      case .numgen(let dreg, let modulus, _, _):
        set(dreg, .selector(.numgenRandom(mod: modulus)))
      case .ct(let key, let dreg):
        set(dreg, .ct(key))
      case .fib(let flags, _, let dreg):
        set(dreg, .fib(flags))
      case .bitwise(let sreg, let dreg, _, let mask, let xor, _):
        let inner: Source2
        switch regs[sreg] {
        case .selector(let s)?: inner = .selector(s)
        case .ct(let k)?: inner = .ct(k)
        default: return nil
        }
        set(dreg, .masked(inner, mask: mask, xor: xor))
      case .immediate(let dreg, let data):
        set(dreg, .immediate(data))
      case .cmp(let sreg, let kop, let data):
        let op: CompareOp = kop == .eq ? .eq : .neq
        guard let src = regs[sreg] else { return nil }
        switch src {
        case .selector(let sel):
          guard let v = value(data, sel.dataType) else { return nil }
          out.append(.match(sel, op, v))
        case .partial(let sel, let n):
          let full = sel.dataType.byteLength
          guard let a = address(data + [UInt8](repeating: 0, count: full - n)) else { return nil }
          out.append(.match(sel, op, .prefix(CIDR(address: a, prefixLength: n * 8))))
        case .masked(.selector(.mark), let mask, _):
          out.append(.markMask(mask: le32(mask), op, le32(data)))
        case .masked(.selector(let sel), let mask, _):
          guard let a = address(data) else { return nil }
          let bits = mask.reduce(0) { $0 + $1.nonzeroBitCount }
          out.append(.match(sel, op, .prefix(CIDR(address: a, prefixLength: bits))))
        case .masked(.ct(.state), let mask, _) where le32(mask) == 0x8 && kop == .neq:
          out.append(.ctState(.new))
        case .masked(.ct(.status), let mask, _) where le32(mask) == 0x20 && kop == .neq:
          out.append(.ctStatus(.dnat))
        case .fib(let flags) where le32(data) == 2 && kop == .eq:
          out.append(.fibTypeLocal(flags == 1 ? .saddr : .daddr))
        default:
          return nil
        }
        reset()
      case .lookup(let set, _, _, let dreg, let flags):
        guard let keys = selectors(), !keys.isEmpty else { return nil }
        out.append(
          dreg != nil ? .vmap(keys, map: set) : .lookup(keys, set: set, negate: flags & 1 != 0))
        reset()
      case .dynset(let set, _, _, _):
        guard let keys = selectors(), keys.count == 1 else { return nil }
        out.append(.updateSet(keys[0], set: set))
        reset()
      case .metaSet(.mark, let sreg):
        guard case .masked(.selector(.mark), let m, let x)? = regs[sreg] else { return nil }
        let mask = le32(m)
        let xor = le32(x)
        out.append(mask == 0xffff_ffff ? .markXor(xor) : .markOr(xor))
        reset()
      case .metaSet:
        return nil
      case .nat(_, _, let regAddr, let regProto, _):
        guard case .immediate(let a)? = regs[regAddr], let addr = address(a) else { return nil }
        var port: UInt16? = nil
        if let regProto {
          guard case .immediate(let p)? = regs[regProto], p.count == 2 else { return nil }
          port = UInt16(p[0]) << 8 | UInt16(p[1])
        }
        out.append(.dnat(addr, port: port))
        reset()
      case .masq(let flags):
        out.append(.masquerade(fullyRandom: (flags ?? 0) & 0x10 != 0))
      case .reject:
        out.append(.reject)
      case .counter:
        out.append(.counter)
      case .verdict(let code, let chain):
        guard let v = verdict(code, chain) else { return nil }
        out.append(.verdict(v))
      }
    }
    return regs.isEmpty ? out : nil
  }
}

/// The form in which the kernel gives a rule set back: what `readBack` returns for a rule set
/// applied by `NFTBackend`. Comparing `normalize(expected)` with a read-back is exact.
public enum KernelForm {
  public static func normalize(_ r: Ruleset) -> Ruleset {
    Ruleset(headerComments: [], tables: r.tables.map(normalize))
  }

  static func comment(_ c: String?) -> String? { c.map(NFTText.sanitizeComment) }

  static func normalize(_ t: Table) -> Table {
    var t = t
    t.comment = comment(t.comment)
    t.sets = t.sets.map { s in
      var s = s
      s.comment = comment(s.comment)
      s.flags = Array(Set(s.flags)).sorted()
      if s.flags.contains(.constant) && s.size == nil && !s.elements.isEmpty {
        s.size = s.elements.count
      }
      let interval = s.flags.contains(.interval)
      s.elements = s.elements.map { e in
        var e = e
        e.comment = comment(e.comment)
        e.key = e.key.map { interval ? intervalValue($0) : hostValue($0) }
        return e
      }
      s.elements.sort { $0.key.lexicographicallyPrecedes($1.key) }
      return s
    }
    t.chains = t.chains.map { c in
      var c = c
      c.comment = comment(c.comment)
      c.rules = c.rules.map { r in
        var r = r
        r.comment = comment(r.comment)
        r.statements = r.statements.map(normalize)
        return r
      }
      return c
    }
    return t
  }

  static func hostValue(_ v: Value) -> Value {
    if case .prefix(let c) = v, c.isHost { return .address(c.address) }
    return v
  }

  static func intervalValue(_ v: Value) -> Value {
    if case .address(let a) = v {
      return .prefix(CIDR(address: a, prefixLength: a.family == .ipv4 ? 32 : 128))
    }
    return v
  }

  static func normalize(_ s: Statement) -> Statement {
    guard case .match(let sel, let op, let v) = s else { return s }
    switch (sel, v) {
    case (_, .prefix(let c)) where c.isHost: return .match(sel, op, .address(c.address))
    case (.l4proto, .integer(let n)):
      if let p = L4Proto.allCases.first(where: { UInt32($0.number) == n }) {
        return .match(sel, op, .proto(p))
      }
    case (.thDport, .integer(let n)) where n <= 0xffff: return .match(sel, op, .port(UInt16(n)))
    case (.mark, .port(let p)), (.numgenRandom, .port(let p)):
      return .match(sel, op, .integer(UInt32(p)))
    default: break
    }
    return s
  }
}

extension Array where Element == Value {
  func lexicographicallyPrecedes(_ other: [Value]) -> Bool {
    self.lexicographicallyPrecedes(other, by: <)
  }
}
