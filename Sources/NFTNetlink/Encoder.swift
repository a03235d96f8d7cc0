import IPAddr
import NFTables

/// The IR cannot be expressed as kernel objects (a value of the wrong type for its selector or set
/// key, an interval set with a concatenated key, ...).
public struct EncodingError: Error, CustomStringConvertible, Equatable {
  public var message: String
  public var description: String { message }
}

/// Lowers operations on the IR to kernel messages, as `nft` 1.0.6 would encode the same text.
struct Encoder {
  /// Upper bound of one element message's payload; big sets are split over several messages.
  static let maxElementBytes = 32 * 1024

  /// Set IDs of sets created in this batch, so that later messages can reference them.
  private var setIDs: [String: UInt32] = [:]
  private var nextSetID: UInt32 = 1

  /// One message and the operation it belongs to (for error reports).
  struct Encoded {
    var message: K.Message
    var summary: String
  }

  static func encode(_ ops: [NFTOperation]) throws -> [Encoded] {
    var e = Encoder()
    var out: [Encoded] = []
    out.reserveCapacity(ops.count)
    for op in ops { try e.encode(op, into: &out) }
    return out
  }

  private func idKey(_ f: TableFamily, _ table: String, _ set: String) -> String {
    "\(f.rawValue) \(table) \(set)"
  }

  private mutating func encode(_ op: NFTOperation, into out: inout [Encoded]) throws {
    let summary = op.summary
    func emit(_ m: K.Message) { out.append(Encoded(message: m, summary: summary)) }
    switch op {
    case .ensureTable(let f, let name):
      emit(.newTable(K.Table(family: f, name: name, flags: nil, userdata: nil)))
    case .addTable(let t):
      emit(
        .newTable(
          K.Table(family: t.family, name: t.name, flags: 0, userdata: Udata.comment(t.comment))))
    case .deleteTable(let f, let name):
      emit(.delTable(K.Table(family: f, name: name)))
      // Sets of a deleted table are gone; later references must not use their IDs.
      setIDs = setIDs.filter { !$0.key.hasPrefix("\(f.rawValue) \(name) ") }
    case .addSet(let f, let table, let s):
      let id = nextSetID
      nextSetID += 1
      setIDs[idKey(f, table, s.name)] = id
      var ks = try Encoder.set(f, table, s)
      ks.id = id
      emit(.newSet(ks))
    case .deleteSet(let f, let table, let name):
      emit(.delSet(Encoder.setRef(f, table, name)))
    case .flushSet(let f, let table, let s):
      emit(.flushSet(Encoder.setRef(f, table, s.name)))
    case .addElements(let f, let table, let s, let elements):
      var ref = Encoder.setRef(f, table, s.name)
      ref.id = setIDs[idKey(f, table, s.name)]
      let encoded = try Encoder.elements(s, elements, forAdd: true)
      for chunk in Encoder.chunks(encoded) {
        out.append(Encoded(message: .newElements(ref, chunk), summary: summary))
      }
    case .deleteElements(let f, let table, let s, let elements):
      let ref = Encoder.setRef(f, table, s.name)
      let encoded = try Encoder.elements(s, elements, forAdd: false)
      for chunk in Encoder.chunks(encoded) {
        out.append(Encoded(message: .delElements(ref, chunk), summary: summary))
      }
    case .addChain(let f, let table, let c):
      emit(.newChain(Encoder.chain(f, table, c)))
    case .flushChain(let f, let table, let name):
      emit(.flushChain(K.Chain(family: f, table: table, name: name)))
    case .deleteChain(let f, let table, let name):
      emit(.delChain(K.Chain(family: f, table: table, name: name)))
    case .addRule(let f, let table, let chain, let r):
      var exprs: [K.Expr] = []
      for s in r.statements {
        try statement(s, family: f, table: table, into: &exprs)
      }
      emit(
        .newRule(
          K.Rule(
            family: f, table: table, chain: chain, exprs: exprs, userdata: Udata.comment(r.comment))
        ))
    }
  }

  // MARK: tables, chains, sets

  static func setRef(_ f: TableFamily, _ table: String, _ name: String) -> K.Set {
    K.Set(family: f, table: table, name: name, flags: 0, keyType: 0, keyLen: 0)
  }

  static func chain(_ f: TableFamily, _ table: String, _ c: Chain) -> K.Chain {
    var k = K.Chain(family: f, table: table, name: c.name, userdata: Udata.comment(c.comment))
    if let b = c.base {
      k.type = b.type.rawValue
      k.hooknum = hookNumber(b.hook)
      k.priority = Int32(b.priority)
      k.policy = b.policy == .drop ? 0 : 1
    }
    return k
  }

  static func hookNumber(_ h: Hook) -> UInt32 {
    switch h {
    case .prerouting: return 0
    case .input: return 1
    case .forward: return 2
    case .output: return 3
    case .postrouting: return 4
    }
  }

  /// nft's datatype numbers (`enum datatypes`).
  static func typeID(_ t: DataType) -> UInt32 {
    switch t {
    case .verdict: return 1
    case .ipv4Addr: return 7
    case .ipv6Addr: return 8
    case .inetProto: return 12
    case .inetService: return 13
    case .mark: return 19
    }
  }

  /// nft's byte order of a datatype (0 unspecified, 1 host, 2 big endian) as stored in set
  /// userdata; single bytes (`inet_proto`) have none.
  static func byteOrder(_ t: DataType) -> UInt32 {
    switch t {
    case .mark: return 1
    case .verdict, .inetProto: return 0
    case .ipv4Addr, .ipv6Addr, .inetService: return 2
    }
  }

  static func align4(_ n: Int) -> Int { (n + 3) & ~3 }

  static func keyLength(_ types: [DataType]) -> Int {
    types.count == 1 ? types[0].byteLength : types.reduce(0) { $0 + align4($1.byteLength) }
  }

  static func set(_ f: TableFamily, _ table: String, _ s: NamedSet) throws -> K.Set {
    guard !s.keyType.isEmpty, !s.keyType.contains(.verdict) else {
      throw EncodingError(message: "set \(s.name): invalid key type")
    }
    if s.flags.contains(.interval) && s.keyType.count > 1 {
      throw EncodingError(
        message: "set \(s.name): interval sets with concatenated keys are not supported")
    }
    var flags: UInt32 = 0
    for fl in s.flags {
      switch fl {
      case .constant: flags |= K.SetFlag.constant
      case .interval: flags |= K.SetFlag.interval
      case .timeout: flags |= K.SetFlag.timeout
      case .dynamic: flags |= K.SetFlag.eval
      }
    }
    var keyType: UInt32 = 0
    for t in s.keyType { keyType = keyType << 6 | typeID(t) }
    var k = K.Set(
      family: f, table: table, name: s.name, flags: flags, keyType: keyType,
      keyLen: UInt32(keyLength(s.keyType)))
    if let d = s.dataType {
      k.flags |= K.SetFlag.map
      k.dataType = d == .verdict ? 0xffff_ff00 : typeID(d)
      k.dataLen = UInt32(d.byteLength)
    }
    if let size = s.size {
      k.size = UInt32(size)
    } else if s.flags.contains(.constant) && !s.elements.isEmpty {
      // nft sizes a constant set to its elements.
      k.size = UInt32(s.elements.count)
    }
    if let t = s.timeout { k.timeoutMs = UInt64(t) * 1000 }
    k.userdata = Udata.set(s)
    return k
  }

  // MARK: elements

  static func elements(_ s: NamedSet, _ elements: [SetElement], forAdd: Bool) throws -> [K.Element]
  {
    if s.flags.contains(.interval) { return try intervals(s, elements, forAdd: forAdd) }
    var out: [K.Element] = []
    out.reserveCapacity(elements.count)
    for e in elements {
      var k = K.Element(key: try key(e.key, s))
      if forAdd {
        try data(e, s, into: &k)
        k.userdata = Udata.comment(e.comment)
      }
      out.append(k)
    }
    return out
  }

  static func key(_ values: [Value], _ s: NamedSet) throws -> [UInt8] {
    guard values.count == s.keyType.count else {
      throw EncodingError(
        message: "set \(s.name): element key has \(values.count) parts, type has \(s.keyType.count)"
      )
    }
    if values.count == 1 { return try bytes(values[0], as: s.keyType[0]) }
    var out: [UInt8] = []
    for (v, t) in zip(values, s.keyType) {
      var b = try bytes(v, as: t)
      while b.count % 4 != 0 { b.append(0) }
      out += b
    }
    return out
  }

  static func data(_ e: SetElement, _ s: NamedSet, into k: inout K.Element) throws {
    switch (e.data, s.dataType) {
    case (.none, .none): break
    case (.verdict(let v), .verdict?): k.verdict = verdict(v)
    case (.value(let vs), let t?) where t != .verdict && vs.count == 1:
      k.data = try bytes(vs[0], as: t)
    default:
      throw EncodingError(message: "set \(s.name): element data does not match the map's type")
    }
  }

  /// Interval elements as nft sends them to an empty set: sorted, each range as a start element
  /// and an end element (flagged) one past its last address; a leading end element at zero when
  /// the first range does not start there; no end element for a range reaching the top.
  static func intervals(_ s: NamedSet, _ elements: [SetElement], forAdd: Bool) throws -> [K.Element]
  {
    let t = s.keyType[0]
    guard t == .ipv4Addr || t == .ipv6Addr else {
      throw EncodingError(message: "set \(s.name): interval sets are supported for addresses only")
    }
    var ranges: [(start: [UInt8], end: [UInt8]?, comment: String?)] = []
    for e in elements {
      guard e.key.count == 1 else {
        throw EncodingError(message: "set \(s.name): bad interval key")
      }
      let cidr: CIDR
      switch e.key[0] {
      case .prefix(let c): cidr = c
      case .address(let a): cidr = CIDR(address: a, prefixLength: a.family == .ipv4 ? 32 : 128)
      default:
        throw EncodingError(
          message: "set \(s.name): interval elements must be addresses or prefixes")
      }
      guard (cidr.family == .ipv4) == (t == .ipv4Addr) else {
        throw EncodingError(message: "set \(s.name): address family does not match the set type")
      }
      let start = cidr.address.bytes
      ranges.append((start, Encoder.rangeEnd(start, prefixLength: cidr.prefixLength), e.comment))
    }
    ranges.sort { $0.start.lexicographicallyPrecedes($1.start) }
    var out: [K.Element] = []
    if forAdd, let first = ranges.first, first.start.contains(where: { $0 != 0 }) {
      out.append(
        K.Element(key: [UInt8](repeating: 0, count: first.start.count), flags: K.elementIntervalEnd)
      )
    }
    for r in ranges {
      var start = K.Element(key: r.start)
      if forAdd { start.userdata = Udata.comment(r.comment) }
      out.append(start)
      if let end = r.end { out.append(K.Element(key: end, flags: K.elementIntervalEnd)) }
    }
    return out
  }

  /// The first address after a prefix, or nil when the prefix reaches the top of the space.
  static func rangeEnd(_ start: [UInt8], prefixLength: Int) -> [UInt8]? {
    var b = start
    if prefixLength == 0 { return nil }
    // Add 1 at bit position `prefixLength - 1` (counted from the most significant bit).
    var byte = (prefixLength - 1) / 8
    var add = UInt16(1) << UInt16(7 - (prefixLength - 1) % 8)
    while byte >= 0 {
      let sum = UInt16(b[byte]) + add
      b[byte] = UInt8(sum & 0xff)
      if sum <= 0xff { return b }
      add = 1
      byte -= 1
    }
    return nil
  }

  /// Splits element lists so that no message's element list exceeds `maxElementBytes`.
  static func chunks(_ elements: [K.Element]) -> [[K.Element]] {
    if elements.isEmpty { return [] }
    var out: [[K.Element]] = []
    var cur: [K.Element] = []
    var size = 0
    for e in elements {
      var n = 16 + align4(e.key.count) + 8
      if let v = e.verdict { n += 24 + align4((v.chain?.utf8.count ?? 0) + 1) }
      if let d = e.data { n += 8 + align4(d.count) }
      if let u = e.userdata { n += 4 + align4(u.count) }
      if size + n > maxElementBytes && !cur.isEmpty {
        out.append(cur)
        cur = []
        size = 0
      }
      cur.append(e)
      size += n
    }
    out.append(cur)
    return out
  }

  // MARK: values

  static func le32(_ v: UInt32) -> [UInt8] {
    [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)]
  }

  static func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }

  /// The bytes of a value of the given type, as the kernel compares them.
  static func bytes(_ v: Value, as t: DataType) throws -> [UInt8] {
    switch (t, v) {
    case (.ipv4Addr, .address(let a)) where a.family == .ipv4: return a.bytes
    case (.ipv6Addr, .address(let a)) where a.family == .ipv6: return a.bytes
    case (.ipv4Addr, .prefix(let c)) where c.family == .ipv4 && c.isHost: return c.address.bytes
    case (.ipv6Addr, .prefix(let c)) where c.family == .ipv6 && c.isHost: return c.address.bytes
    case (.inetProto, .proto(let p)): return [p.number]
    case (.inetProto, .integer(let n)) where n <= 0xff: return [UInt8(n)]
    case (.inetService, .port(let p)): return be16(p)
    case (.inetService, .integer(let n)) where n <= 0xffff: return be16(UInt16(n))
    case (.mark, .integer(let n)): return le32(n)
    case (.mark, .port(let p)): return le32(UInt32(p))
    default:
      throw EncodingError(message: "value \(NFTText.value(v)) is not a valid \(t.rawValue)")
    }
  }

  static func verdict(_ v: Verdict) -> (code: Int32, chain: String?) {
    switch v {
    case .accept: return (K.VerdictCode.accept, nil)
    case .drop: return (K.VerdictCode.drop, nil)
    case .return: return (K.VerdictCode.return, nil)
    case .jump(let c): return (K.VerdictCode.jump, c)
    case .goto(let c): return (K.VerdictCode.goto, c)
    }
  }

  // MARK: rules

  /// Loads a selector into a register.
  static func load(_ s: Selector, into reg: K.Reg) -> K.Expr {
    switch s {
    case .saddr(let f):
      return .payload(base: .network, offset: f == .ip ? 12 : 8, len: f == .ip ? 4 : 16, dreg: reg)
    case .daddr(let f):
      return .payload(base: .network, offset: f == .ip ? 16 : 24, len: f == .ip ? 4 : 16, dreg: reg)
    case .l4proto: return .meta(key: .l4proto, dreg: reg)
    case .thDport: return .payload(base: .transport, offset: 2, len: 2, dreg: reg)
    case .mark: return .meta(key: .mark, dreg: reg)
    case .numgenRandom(let mod): return .numgen(dreg: reg, modulus: mod, type: 1, offset: 0)
    }
  }

  /// Loads a concatenation of selectors into consecutive registers; returns the first register.
  static func loadConcat(_ keys: [Selector], into exprs: inout [K.Expr]) -> K.Reg {
    var slot = 0
    for k in keys {
      exprs.append(load(k, into: K.reg(slot: slot)))
      slot += align4(k.dataType.byteLength) / 4
    }
    return K.reg(slot: 0)
  }

  private func setID(_ f: TableFamily, _ table: String, _ set: String) -> UInt32? {
    setIDs[idKey(f, table, set)]
  }

  private func statement(
    _ s: Statement, family f: TableFamily, table: String, into exprs: inout [K.Expr]
  ) throws {
    let r1 = K.reg(slot: 0)
    switch s {
    case .match(let sel, let op, let value):
      let cop: K.CmpOp = op == .eq ? .eq : .neq
      if case .prefix(let c) = value, !c.isHost {
        try Encoder.prefixMatch(sel, c, cop, into: &exprs)
        return
      }
      exprs.append(Encoder.load(sel, into: r1))
      exprs.append(.cmp(sreg: r1, op: cop, data: try Encoder.bytes(value, as: sel.dataType)))
    case .markMask(let mask, let op, let v):
      exprs.append(.meta(key: .mark, dreg: r1))
      exprs.append(
        .bitwise(
          sreg: r1, dreg: r1, len: 4, mask: Encoder.le32(mask), xor: Encoder.le32(0),
          explicitOp: true))
      exprs.append(.cmp(sreg: r1, op: op == .eq ? .eq : .neq, data: Encoder.le32(v)))
    case .ctState(.new):
      Encoder.flagTest(.ct(key: .state, dreg: r1), bit: 0x8, into: &exprs)
    case .ctStatus(.dnat):
      Encoder.flagTest(.ct(key: .status, dreg: r1), bit: 0x20, into: &exprs)
    case .fibTypeLocal(let a):
      exprs.append(.fib(flags: a == .saddr ? 1 : 2, result: 3, dreg: r1))
      exprs.append(.cmp(sreg: r1, op: .eq, data: Encoder.le32(2)))
    case .lookup(let keys, let set, let negate):
      let reg = Encoder.loadConcat(keys, into: &exprs)
      exprs.append(
        .lookup(set: set, setID: setID(f, table, set), sreg: reg, dreg: nil, flags: negate ? 1 : 0))
    case .vmap(let keys, let map):
      let reg = Encoder.loadConcat(keys, into: &exprs)
      exprs.append(
        .lookup(set: map, setID: setID(f, table, map), sreg: reg, dreg: K.verdictReg, flags: 0))
    case .markOr(let v):
      Encoder.markSet(mask: ~v, xor: v, into: &exprs)
    case .markXor(let v):
      Encoder.markSet(mask: 0xffff_ffff, xor: v, into: &exprs)
    case .updateSet(let sel, let set):
      exprs.append(Encoder.load(sel, into: r1))
      exprs.append(.dynset(set: set, setID: setID(f, table, set), op: 1, sreg: r1))
    case .dnat(let addr, let port):
      exprs.append(.immediate(dreg: 1, data: addr.bytes))
      let fam: UInt32 = addr.family == .ipv4 ? 2 : 10
      if let port {
        exprs.append(.immediate(dreg: 2, data: Encoder.be16(port)))
        exprs.append(.nat(type: 1, family: fam, regAddr: 1, regProto: 2, flags: 2))
      } else {
        exprs.append(.nat(type: 1, family: fam, regAddr: 1, regProto: nil, flags: nil))
      }
    case .masquerade(let fullyRandom):
      exprs.append(.masq(flags: fullyRandom ? 0x10 : nil))
    case .reject:
      exprs.append(.reject(type: 0, code: f == .ip ? 3 : 4))
    case .counter:
      exprs.append(.counter)
    case .verdict(let v):
      let (code, chain) = Encoder.verdict(v)
      exprs.append(.verdict(code: code, chain: chain))
    }
  }

  static func flagTest(_ load: K.Expr, bit: UInt32, into exprs: inout [K.Expr]) {
    exprs.append(load)
    exprs.append(
      .bitwise(sreg: 1, dreg: 1, len: 4, mask: le32(bit), xor: le32(0), explicitOp: false))
    exprs.append(.cmp(sreg: 1, op: .neq, data: le32(0)))
  }

  static func markSet(mask: UInt32, xor: UInt32, into exprs: inout [K.Expr]) {
    exprs.append(.meta(key: .mark, dreg: 1))
    exprs.append(
      .bitwise(sreg: 1, dreg: 1, len: 4, mask: le32(mask), xor: le32(xor), explicitOp: true))
    exprs.append(.metaSet(key: .mark, sreg: 1))
  }

  /// A network match: whole bytes of the prefix when it ends on a byte boundary, otherwise the
  /// full address masked.
  static func prefixMatch(_ sel: Selector, _ c: CIDR, _ op: K.CmpOp, into exprs: inout [K.Expr])
    throws
  {
    let family: TableFamily
    switch sel {
    case .saddr(let f), .daddr(let f): family = f
    default: throw EncodingError(message: "prefix match on a non-address selector")
    }
    guard (family == .ip) == (c.family == .ipv4) else {
      throw EncodingError(message: "prefix \(c) does not match selector family \(family.rawValue)")
    }
    guard case .payload(let base, let offset, let len, _) = load(sel, into: 1) else { return }
    let addr = c.address.bytes
    if c.prefixLength > 0 && c.prefixLength % 8 == 0 {
      let n = c.prefixLength / 8
      exprs.append(.payload(base: base, offset: offset, len: UInt32(n), dreg: 1))
      exprs.append(.cmp(sreg: 1, op: op, data: Array(addr[0..<n])))
      return
    }
    var mask = [UInt8](repeating: 0, count: addr.count)
    for bit in 0..<c.prefixLength { mask[bit / 8] |= UInt8(0x80) >> UInt8(bit % 8) }
    exprs.append(.payload(base: base, offset: offset, len: len, dreg: 1))
    exprs.append(
      .bitwise(
        sreg: 1, dreg: 1, len: len, mask: mask, xor: [UInt8](repeating: 0, count: addr.count),
        explicitOp: false))
    exprs.append(.cmp(sreg: 1, op: op, data: addr))
  }
}

/// nft's userdata TLVs (type byte, length byte, value) for comments and set type information.
enum Udata {
  static func tlv(_ type: UInt8, _ value: [UInt8]) -> [UInt8] {
    [type, UInt8(value.count)] + value
  }

  static func string(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }

  /// Comment of a table, chain, rule or element (type 0 in each of those userdata spaces).
  static func comment(_ c: String?) -> [UInt8]? {
    guard let c else { return nil }
    return tlv(0, string(NFTText.sanitizeComment(c)))
  }

  /// Set userdata: key byte order, data byte order (maps), key typeof marker (concatenations),
  /// data interval flag (maps), comment — in the order nft 1.0.6 writes them.
  static func set(_ s: NamedSet) -> [UInt8] {
    var out: [UInt8] = []
    let keyOrder: UInt32 = s.keyType.count == 1 ? Encoder.byteOrder(s.keyType[0]) : 0
    out += tlv(0, Encoder.le32(keyOrder))
    if let d = s.dataType { out += tlv(1, Encoder.le32(Encoder.byteOrder(d))) }
    if s.keyType.count > 1 {
      // A concatenation key: expression type "concat" with no per-field data.
      out += tlv(3, tlv(0, Encoder.le32(13)) + tlv(1, []))
    }
    if s.dataType != nil { out += tlv(6, Encoder.le32(0)) }
    if let c = s.comment { out += tlv(7, string(NFTText.sanitizeComment(c))) }
    return out
  }

  /// Parses a TLV list into (type, value) pairs; nil when malformed.
  static func parse(_ bytes: [UInt8]) -> [(UInt8, [UInt8])]? {
    var out: [(UInt8, [UInt8])] = []
    var i = 0
    while i < bytes.count {
      guard i + 2 <= bytes.count else { return nil }
      let t = bytes[i]
      let n = Int(bytes[i + 1])
      guard i + 2 + n <= bytes.count else { return nil }
      out.append((t, Array(bytes[(i + 2)..<(i + 2 + n)])))
      i += 2 + n
    }
    return out
  }

  /// The comment stored in a userdata blob under `type`, if any.
  static func comment(in bytes: [UInt8]?, type: UInt8 = 0) -> String? {
    guard let bytes, let items = parse(bytes) else { return nil }
    for (t, v) in items where t == type {
      let trimmed = v.last == 0 ? Array(v.dropLast()) : v
      return String(decoding: trimmed, as: UTF8.self)
    }
    return nil
  }
}
