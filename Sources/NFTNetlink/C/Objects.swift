// All libnftnl object handling: each class owns exactly one C object and frees it in deinit.
// Objects added to another (expressions to a rule, elements to a set) are owned by that parent
// from then on, so they never get a Swift owner of their own.

import CNetfilter
import NFTables

#if canImport(Glibc)
  import Glibc
#endif

/// Attribute numbers as libnftnl's setters want them.
@inline(__always) func attr(_ v: Int) -> UInt16 { UInt16(v) }
@inline(__always) func attr<T: RawRepresentable>(_ v: T) -> UInt16 where T.RawValue: BinaryInteger {
  UInt16(v.rawValue)
}

func nfproto(_ f: TableFamily) -> UInt16 { f == .ip ? UInt16(NFPROTO_IPV4) : UInt16(NFPROTO_IPV6) }

func tableFamily(_ nfproto: UInt32) -> TableFamily? {
  switch nfproto {
  case UInt32(NFPROTO_IPV4): return .ip
  case UInt32(NFPROTO_IPV6): return .ip6
  default: return nil
  }
}

func bytesOf(_ p: UnsafeRawPointer?, _ len: UInt32) -> [UInt8] {
  guard let p, len > 0 else { return [] }
  return Array(UnsafeRawBufferPointer(start: p, count: Int(len)))
}

func string(_ p: UnsafePointer<CChar>?) -> String? {
  p.map { String(cString: $0) }
}

/// A libnftnl table.
final class NLTable {
  let ptr: OpaquePointer
  init() { ptr = nftnl_table_alloc() }
  deinit { nftnl_table_free(ptr) }

  convenience init(_ t: K.Table) {
    self.init()
    nftnl_table_set_str(ptr, attr(NFTNL_TABLE_NAME), t.name)
    if let f = t.flags { nftnl_table_set_u32(ptr, attr(NFTNL_TABLE_FLAGS), f) }
    if let u = t.userdata {
      u.withUnsafeBytes {
        _ = nftnl_table_set_data(ptr, attr(NFTNL_TABLE_USERDATA), $0.baseAddress, UInt32($0.count))
      }
    }
  }

  func payload(_ nlh: UnsafeMutablePointer<nlmsghdr>) { nftnl_table_nlmsg_build_payload(nlh, ptr) }

  static func parse(_ nlh: UnsafePointer<nlmsghdr>) -> K.Table? {
    let t = NLTable()
    guard nftnl_table_nlmsg_parse(nlh, t.ptr) >= 0,
      let fam = tableFamily(nftnl_table_get_u32(t.ptr, attr(NFTNL_TABLE_FAMILY))),
      let name = string(nftnl_table_get_str(t.ptr, attr(NFTNL_TABLE_NAME)))
    else { return nil }
    var k = K.Table(
      family: fam, name: name, flags: nftnl_table_get_u32(t.ptr, attr(NFTNL_TABLE_FLAGS)))
    if nftnl_table_is_set(t.ptr, attr(NFTNL_TABLE_USERDATA)) {
      var len: UInt32 = 0
      let p = nftnl_table_get_data(t.ptr, attr(NFTNL_TABLE_USERDATA), &len)
      k.userdata = bytesOf(p, len)
    }
    return k
  }
}

/// A libnftnl chain.
final class NLChain {
  let ptr: OpaquePointer
  init() { ptr = nftnl_chain_alloc() }
  deinit { nftnl_chain_free(ptr) }

  convenience init(_ c: K.Chain, nameOnly: Bool = false) {
    self.init()
    nftnl_chain_set_str(ptr, attr(NFTNL_CHAIN_TABLE), c.table)
    nftnl_chain_set_str(ptr, attr(NFTNL_CHAIN_NAME), c.name)
    if nameOnly { return }
    if let type = c.type { nftnl_chain_set_str(ptr, attr(NFTNL_CHAIN_TYPE), type) }
    if let h = c.hooknum { nftnl_chain_set_u32(ptr, attr(NFTNL_CHAIN_HOOKNUM), h) }
    if let p = c.priority { nftnl_chain_set_s32(ptr, attr(NFTNL_CHAIN_PRIO), p) }
    if let p = c.policy { nftnl_chain_set_u32(ptr, attr(NFTNL_CHAIN_POLICY), p) }
    if let u = c.userdata {
      u.withUnsafeBytes {
        _ = nftnl_chain_set_data(ptr, attr(NFTNL_CHAIN_USERDATA), $0.baseAddress, UInt32($0.count))
      }
    }
  }

  /// A chain carrying only its table (a dump filter).
  convenience init(table: String) {
    self.init()
    nftnl_chain_set_str(ptr, attr(NFTNL_CHAIN_TABLE), table)
  }

  func payload(_ nlh: UnsafeMutablePointer<nlmsghdr>) { nftnl_chain_nlmsg_build_payload(nlh, ptr) }

  static func parse(_ nlh: UnsafePointer<nlmsghdr>) -> K.Chain? {
    let c = NLChain()
    guard nftnl_chain_nlmsg_parse(nlh, c.ptr) >= 0,
      let fam = tableFamily(nftnl_chain_get_u32(c.ptr, attr(NFTNL_CHAIN_FAMILY))),
      let table = string(nftnl_chain_get_str(c.ptr, attr(NFTNL_CHAIN_TABLE))),
      let name = string(nftnl_chain_get_str(c.ptr, attr(NFTNL_CHAIN_NAME)))
    else { return nil }
    var k = K.Chain(family: fam, table: table, name: name)
    if nftnl_chain_is_set(c.ptr, attr(NFTNL_CHAIN_HOOKNUM)) {
      k.hooknum = nftnl_chain_get_u32(c.ptr, attr(NFTNL_CHAIN_HOOKNUM))
      k.priority = nftnl_chain_get_s32(c.ptr, attr(NFTNL_CHAIN_PRIO))
      k.type = string(nftnl_chain_get_str(c.ptr, attr(NFTNL_CHAIN_TYPE)))
      k.policy = nftnl_chain_get_u32(c.ptr, attr(NFTNL_CHAIN_POLICY))
    }
    if nftnl_chain_is_set(c.ptr, attr(NFTNL_CHAIN_USERDATA)) {
      var len: UInt32 = 0
      k.userdata = bytesOf(nftnl_chain_get_data(c.ptr, attr(NFTNL_CHAIN_USERDATA), &len), len)
    }
    return k
  }
}

/// A libnftnl rule; its expressions belong to it.
final class NLRule {
  let ptr: OpaquePointer
  init() { ptr = nftnl_rule_alloc() }
  deinit { nftnl_rule_free(ptr) }

  convenience init(_ r: K.Rule) {
    self.init()
    nftnl_rule_set_str(ptr, attr(NFTNL_RULE_TABLE), r.table)
    nftnl_rule_set_str(ptr, attr(NFTNL_RULE_CHAIN), r.chain)
    for e in r.exprs { add(e) }
    if let u = r.userdata {
      u.withUnsafeBytes {
        _ = nftnl_rule_set_data(ptr, attr(NFTNL_RULE_USERDATA), $0.baseAddress, UInt32($0.count))
      }
    }
  }

  /// A rule carrying only table and chain (flush filter / dump filter).
  convenience init(table: String, chain: String?) {
    self.init()
    nftnl_rule_set_str(ptr, attr(NFTNL_RULE_TABLE), table)
    if let chain { nftnl_rule_set_str(ptr, attr(NFTNL_RULE_CHAIN), chain) }
  }

  func payload(_ nlh: UnsafeMutablePointer<nlmsghdr>) { nftnl_rule_nlmsg_build_payload(nlh, ptr) }

  private func add(_ x: K.Expr) {
    func make(_ name: String) -> OpaquePointer { nftnl_expr_alloc(name) }
    func u32(_ e: OpaquePointer, _ a: Int, _ v: UInt32) { nftnl_expr_set_u32(e, attr(a), v) }
    func data(_ e: OpaquePointer, _ a: Int, _ v: [UInt8]) {
      v.withUnsafeBytes { _ = nftnl_expr_set(e, attr(a), $0.baseAddress, UInt32($0.count)) }
    }
    let e: OpaquePointer
    switch x {
    case .payload(let base, let offset, let len, let dreg):
      e = make("payload")
      u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg)
      u32(e, NFTNL_EXPR_PAYLOAD_BASE, base.rawValue)
      u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset)
      u32(e, NFTNL_EXPR_PAYLOAD_LEN, len)
    case .meta(let key, let dreg):
      e = make("meta")
      u32(e, NFTNL_EXPR_META_KEY, key.rawValue)
      u32(e, NFTNL_EXPR_META_DREG, dreg)
    case .metaSet(let key, let sreg):
      e = make("meta")
      u32(e, NFTNL_EXPR_META_KEY, key.rawValue)
      u32(e, NFTNL_EXPR_META_SREG, sreg)
    case .ct(let key, let dreg):
      e = make("ct")
      u32(e, NFTNL_EXPR_CT_KEY, key.rawValue)
      u32(e, NFTNL_EXPR_CT_DREG, dreg)
    case .fib(let flags, let result, let dreg):
      e = make("fib")
      u32(e, NFTNL_EXPR_FIB_FLAGS, flags)
      u32(e, NFTNL_EXPR_FIB_RESULT, result)
      u32(e, NFTNL_EXPR_FIB_DREG, dreg)
    case .numgen(let dreg, let modulus, let type, let offset):
      e = make("numgen")
      u32(e, NFTNL_EXPR_NG_DREG, dreg)
      u32(e, NFTNL_EXPR_NG_MODULUS, modulus)
      u32(e, NFTNL_EXPR_NG_TYPE, type)
      u32(e, NFTNL_EXPR_NG_OFFSET, offset)
    case .bitwise(let sreg, let dreg, let len, let mask, let xor, let explicitOp):
      e = make("bitwise")
      u32(e, NFTNL_EXPR_BITWISE_SREG, sreg)
      u32(e, NFTNL_EXPR_BITWISE_DREG, dreg)
      if explicitOp { u32(e, NFTNL_EXPR_BITWISE_OP, 0) }
      u32(e, NFTNL_EXPR_BITWISE_LEN, len)
      data(e, NFTNL_EXPR_BITWISE_MASK, mask)
      data(e, NFTNL_EXPR_BITWISE_XOR, xor)
    case .cmp(let sreg, let op, let d):
      e = make("cmp")
      u32(e, NFTNL_EXPR_CMP_SREG, sreg)
      u32(e, NFTNL_EXPR_CMP_OP, op.rawValue)
      data(e, NFTNL_EXPR_CMP_DATA, d)
    case .lookup(let set, let setID, let sreg, let dreg, let flags):
      e = make("lookup")
      u32(e, NFTNL_EXPR_LOOKUP_SREG, sreg)
      if let dreg { u32(e, NFTNL_EXPR_LOOKUP_DREG, dreg) }
      _ = nftnl_expr_set_str(e, attr(NFTNL_EXPR_LOOKUP_SET), set)
      if let setID { u32(e, NFTNL_EXPR_LOOKUP_SET_ID, setID) }
      if flags != 0 { u32(e, NFTNL_EXPR_LOOKUP_FLAGS, flags) }
    case .dynset(let set, let setID, let op, let sreg):
      e = make("dynset")
      u32(e, NFTNL_EXPR_DYNSET_SREG_KEY, sreg)
      u32(e, NFTNL_EXPR_DYNSET_OP, op)
      _ = nftnl_expr_set_str(e, attr(NFTNL_EXPR_DYNSET_SET_NAME), set)
      if let setID { u32(e, NFTNL_EXPR_DYNSET_SET_ID, setID) }
    case .immediate(let dreg, let d):
      e = make("immediate")
      u32(e, NFTNL_EXPR_IMM_DREG, dreg)
      data(e, NFTNL_EXPR_IMM_DATA, d)
    case .verdict(let code, let chain):
      e = make("immediate")
      u32(e, NFTNL_EXPR_IMM_DREG, K.verdictReg)
      u32(e, NFTNL_EXPR_IMM_VERDICT, UInt32(bitPattern: code))
      if let chain { _ = nftnl_expr_set_str(e, attr(NFTNL_EXPR_IMM_CHAIN), chain) }
    case .nat(let type, let family, let regAddr, let regProto, let flags):
      e = make("nat")
      u32(e, NFTNL_EXPR_NAT_TYPE, type)
      u32(e, NFTNL_EXPR_NAT_FAMILY, family)
      u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, regAddr)
      if let regProto { u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, regProto) }
      if let flags { u32(e, NFTNL_EXPR_NAT_FLAGS, flags) }
    case .masq(let flags):
      e = make("masq")
      if let flags { u32(e, NFTNL_EXPR_MASQ_FLAGS, flags) }
    case .reject(let type, let code):
      e = make("reject")
      u32(e, NFTNL_EXPR_REJECT_TYPE, type)
      nftnl_expr_set_u8(e, attr(NFTNL_EXPR_REJECT_CODE), code)
    case .counter:
      e = make("counter")
    }
    nftnl_rule_add_expr(ptr, e)
  }

  static func parse(_ nlh: UnsafePointer<nlmsghdr>) -> (K.Rule, handle: UInt64)? {
    let r = NLRule()
    guard nftnl_rule_nlmsg_parse(nlh, r.ptr) >= 0,
      let fam = tableFamily(nftnl_rule_get_u32(r.ptr, attr(NFTNL_RULE_FAMILY))),
      let table = string(nftnl_rule_get_str(r.ptr, attr(NFTNL_RULE_TABLE))),
      let chain = string(nftnl_rule_get_str(r.ptr, attr(NFTNL_RULE_CHAIN)))
    else { return nil }
    var k = K.Rule(family: fam, table: table, chain: chain, exprs: [])
    if nftnl_rule_is_set(r.ptr, attr(NFTNL_RULE_USERDATA)) {
      var len: UInt32 = 0
      k.userdata = bytesOf(nftnl_rule_get_data(r.ptr, attr(NFTNL_RULE_USERDATA), &len), len)
    }
    let iter = ExprIterator(r)
    while let e = iter.next() {
      guard let x = parseExpr(e) else {
        k.foreign = true
        break
      }
      k.exprs.append(x)
    }
    return (k, nftnl_rule_get_u64(r.ptr, attr(NFTNL_RULE_HANDLE)))
  }

  /// Reads one expression (owned by its rule) into the Swift model; nil for anything nftproxy
  /// does not produce.
  private static func parseExpr(_ e: OpaquePointer) -> K.Expr? {
    func u32(_ a: Int) -> UInt32 { nftnl_expr_get_u32(e, attr(a)) }
    func has(_ a: Int) -> Bool { nftnl_expr_is_set(e, attr(a)) }
    func data(_ a: Int) -> [UInt8] {
      var len: UInt32 = 0
      return bytesOf(nftnl_expr_get(e, attr(a), &len), len)
    }
    func str(_ a: Int) -> String? { has(a) ? string(nftnl_expr_get_str(e, attr(a))) : nil }
    guard let name = string(nftnl_expr_get_str(e, attr(NFTNL_EXPR_NAME))) else { return nil }
    switch name {
    case "payload":
      guard let base = K.PayloadBase(rawValue: u32(NFTNL_EXPR_PAYLOAD_BASE)) else { return nil }
      return .payload(
        base: base, offset: u32(NFTNL_EXPR_PAYLOAD_OFFSET), len: u32(NFTNL_EXPR_PAYLOAD_LEN),
        dreg: u32(NFTNL_EXPR_PAYLOAD_DREG))
    case "meta":
      guard let key = K.MetaKey(rawValue: u32(NFTNL_EXPR_META_KEY)) else { return nil }
      if has(NFTNL_EXPR_META_SREG) { return .metaSet(key: key, sreg: u32(NFTNL_EXPR_META_SREG)) }
      return .meta(key: key, dreg: u32(NFTNL_EXPR_META_DREG))
    case "ct":
      guard let key = K.CtKey(rawValue: u32(NFTNL_EXPR_CT_KEY)), has(NFTNL_EXPR_CT_DREG) else {
        return nil
      }
      return .ct(key: key, dreg: u32(NFTNL_EXPR_CT_DREG))
    case "fib":
      return .fib(
        flags: u32(NFTNL_EXPR_FIB_FLAGS), result: u32(NFTNL_EXPR_FIB_RESULT),
        dreg: u32(NFTNL_EXPR_FIB_DREG))
    case "numgen":
      return .numgen(
        dreg: u32(NFTNL_EXPR_NG_DREG), modulus: u32(NFTNL_EXPR_NG_MODULUS),
        type: u32(NFTNL_EXPR_NG_TYPE),
        offset: u32(NFTNL_EXPR_NG_OFFSET))
    case "bitwise":
      return .bitwise(
        sreg: u32(NFTNL_EXPR_BITWISE_SREG), dreg: u32(NFTNL_EXPR_BITWISE_DREG),
        len: u32(NFTNL_EXPR_BITWISE_LEN),
        mask: data(NFTNL_EXPR_BITWISE_MASK), xor: data(NFTNL_EXPR_BITWISE_XOR),
        explicitOp: has(NFTNL_EXPR_BITWISE_OP))
    case "cmp":
      guard let op = K.CmpOp(rawValue: u32(NFTNL_EXPR_CMP_OP)) else { return nil }
      return .cmp(sreg: u32(NFTNL_EXPR_CMP_SREG), op: op, data: data(NFTNL_EXPR_CMP_DATA))
    case "lookup":
      guard let set = str(NFTNL_EXPR_LOOKUP_SET) else { return nil }
      return .lookup(
        set: set, setID: nil, sreg: u32(NFTNL_EXPR_LOOKUP_SREG),
        dreg: has(NFTNL_EXPR_LOOKUP_DREG) ? u32(NFTNL_EXPR_LOOKUP_DREG) : nil,
        flags: has(NFTNL_EXPR_LOOKUP_FLAGS) ? u32(NFTNL_EXPR_LOOKUP_FLAGS) : 0)
    case "dynset":
      guard let set = str(NFTNL_EXPR_DYNSET_SET_NAME) else { return nil }
      return .dynset(
        set: set, setID: nil, op: u32(NFTNL_EXPR_DYNSET_OP), sreg: u32(NFTNL_EXPR_DYNSET_SREG_KEY))
    case "immediate":
      let dreg = u32(NFTNL_EXPR_IMM_DREG)
      if dreg == K.verdictReg {
        return .verdict(
          code: Int32(bitPattern: u32(NFTNL_EXPR_IMM_VERDICT)), chain: str(NFTNL_EXPR_IMM_CHAIN))
      }
      return .immediate(dreg: dreg, data: data(NFTNL_EXPR_IMM_DATA))
    case "nat":
      return .nat(
        type: u32(NFTNL_EXPR_NAT_TYPE), family: u32(NFTNL_EXPR_NAT_FAMILY),
        regAddr: u32(NFTNL_EXPR_NAT_REG_ADDR_MIN),
        regProto: has(NFTNL_EXPR_NAT_REG_PROTO_MIN) ? u32(NFTNL_EXPR_NAT_REG_PROTO_MIN) : nil,
        flags: has(NFTNL_EXPR_NAT_FLAGS) ? u32(NFTNL_EXPR_NAT_FLAGS) : nil)
    case "masq":
      let flags = has(NFTNL_EXPR_MASQ_FLAGS) ? u32(NFTNL_EXPR_MASQ_FLAGS) : 0
      return .masq(flags: flags == 0 ? nil : flags)
    case "reject":
      return .reject(
        type: u32(NFTNL_EXPR_REJECT_TYPE), code: nftnl_expr_get_u8(e, attr(NFTNL_EXPR_REJECT_CODE)))
    case "counter":
      return .counter
    default:
      return nil
    }
  }
}

/// Iterates a rule's expressions (the iterator is the only object owned here).
final class ExprIterator {
  private let ptr: OpaquePointer
  private let rule: NLRule  // keeps the rule alive while iterating
  init(_ rule: NLRule) {
    self.rule = rule
    ptr = nftnl_expr_iter_create(rule.ptr)
  }
  deinit { nftnl_expr_iter_destroy(ptr) }
  func next() -> OpaquePointer? { nftnl_expr_iter_next(ptr) }
}

/// A libnftnl set; its elements belong to it.
final class NLSet {
  let ptr: OpaquePointer
  init() { ptr = nftnl_set_alloc() }
  deinit { nftnl_set_free(ptr) }

  /// A full set definition (for `NEWSET`).
  convenience init(definition s: K.Set) {
    self.init(reference: s)
    nftnl_set_set_u32(ptr, attr(NFTNL_SET_FLAGS), s.flags)
    nftnl_set_set_u32(ptr, attr(NFTNL_SET_KEY_TYPE), s.keyType)
    nftnl_set_set_u32(ptr, attr(NFTNL_SET_KEY_LEN), s.keyLen)
    if let d = s.dataType { nftnl_set_set_u32(ptr, attr(NFTNL_SET_DATA_TYPE), d) }
    if let d = s.dataLen { nftnl_set_set_u32(ptr, attr(NFTNL_SET_DATA_LEN), d) }
    if let size = s.size { nftnl_set_set_u32(ptr, attr(NFTNL_SET_DESC_SIZE), size) }
    if let t = s.timeoutMs { nftnl_set_set_u64(ptr, attr(NFTNL_SET_TIMEOUT), t) }
    if let u = s.userdata {
      u.withUnsafeBytes {
        _ = nftnl_set_set_data(ptr, attr(NFTNL_SET_USERDATA), $0.baseAddress, UInt32($0.count))
      }
    }
  }

  /// Table, name and (for sets created in the same batch) ID: enough to address a set.
  convenience init(reference s: K.Set) {
    self.init()
    nftnl_set_set_str(ptr, attr(NFTNL_SET_TABLE), s.table)
    nftnl_set_set_str(ptr, attr(NFTNL_SET_NAME), s.name)
    if let id = s.id { nftnl_set_set_u32(ptr, attr(NFTNL_SET_ID), id) }
  }

  /// A set carrying only its table (a dump filter).
  convenience init(table: String) {
    self.init()
    nftnl_set_set_str(ptr, attr(NFTNL_SET_TABLE), table)
  }

  func addElement(_ k: K.Element) {
    let e = nftnl_set_elem_alloc()!
    k.key.withUnsafeBytes {
      _ = nftnl_set_elem_set(e, attr(NFTNL_SET_ELEM_KEY), $0.baseAddress, UInt32($0.count))
    }
    if let f = k.flags { nftnl_set_elem_set_u32(e, attr(NFTNL_SET_ELEM_FLAGS), f) }
    if let v = k.verdict {
      nftnl_set_elem_set_u32(e, attr(NFTNL_SET_ELEM_VERDICT), UInt32(bitPattern: v.code))
      if let c = v.chain { _ = nftnl_set_elem_set_str(e, attr(NFTNL_SET_ELEM_CHAIN), c) }
    }
    if let d = k.data {
      d.withUnsafeBytes {
        _ = nftnl_set_elem_set(e, attr(NFTNL_SET_ELEM_DATA), $0.baseAddress, UInt32($0.count))
      }
    }
    if let u = k.userdata {
      u.withUnsafeBytes {
        _ = nftnl_set_elem_set(e, attr(NFTNL_SET_ELEM_USERDATA), $0.baseAddress, UInt32($0.count))
      }
    }
    nftnl_set_elem_add(ptr, e)
  }

  func payload(_ nlh: UnsafeMutablePointer<nlmsghdr>) { nftnl_set_nlmsg_build_payload(nlh, ptr) }
  func elementsPayload(_ nlh: UnsafeMutablePointer<nlmsghdr>) {
    nftnl_set_elems_nlmsg_build_payload(nlh, ptr)
  }

  static func parse(_ nlh: UnsafePointer<nlmsghdr>) -> K.Set? {
    let s = NLSet()
    guard nftnl_set_nlmsg_parse(nlh, s.ptr) >= 0,
      let fam = tableFamily(nftnl_set_get_u32(s.ptr, attr(NFTNL_SET_FAMILY))),
      let table = string(nftnl_set_get_str(s.ptr, attr(NFTNL_SET_TABLE))),
      let name = string(nftnl_set_get_str(s.ptr, attr(NFTNL_SET_NAME)))
    else { return nil }
    func has(_ a: nftnl_set_attr) -> Bool { nftnl_set_is_set(s.ptr, attr(a)) }
    var k = K.Set(
      family: fam, table: table, name: name, flags: nftnl_set_get_u32(s.ptr, attr(NFTNL_SET_FLAGS)),
      keyType: nftnl_set_get_u32(s.ptr, attr(NFTNL_SET_KEY_TYPE)),
      keyLen: nftnl_set_get_u32(s.ptr, attr(NFTNL_SET_KEY_LEN)))
    if has(NFTNL_SET_DATA_TYPE) { k.dataType = nftnl_set_get_u32(s.ptr, attr(NFTNL_SET_DATA_TYPE)) }
    if has(NFTNL_SET_DATA_LEN) { k.dataLen = nftnl_set_get_u32(s.ptr, attr(NFTNL_SET_DATA_LEN)) }
    if has(NFTNL_SET_DESC_SIZE) { k.size = nftnl_set_get_u32(s.ptr, attr(NFTNL_SET_DESC_SIZE)) }
    if has(NFTNL_SET_TIMEOUT) { k.timeoutMs = nftnl_set_get_u64(s.ptr, attr(NFTNL_SET_TIMEOUT)) }
    if has(NFTNL_SET_USERDATA) {
      var len: UInt32 = 0
      k.userdata = bytesOf(nftnl_set_get_data(s.ptr, attr(NFTNL_SET_USERDATA), &len), len)
    }
    return k
  }

  /// Parses one `NEWSETELEM` dump message: the set name and its elements.
  static func parseElements(_ nlh: UnsafePointer<nlmsghdr>) -> (set: String, [K.Element])? {
    let s = NLSet()
    guard nftnl_set_elems_nlmsg_parse(nlh, s.ptr) >= 0,
      let name = string(nftnl_set_get_str(s.ptr, attr(NFTNL_SET_NAME)))
    else { return nil }
    var out: [K.Element] = []
    let iter = ElementIterator(s)
    while let e = iter.next() {
      func has(_ a: Int) -> Bool { nftnl_set_elem_is_set(e, attr(a)) }
      func data(_ a: Int) -> [UInt8] {
        var len: UInt32 = 0
        return bytesOf(nftnl_set_elem_get(e, attr(a), &len), len)
      }
      var k = K.Element(key: data(NFTNL_SET_ELEM_KEY))
      if has(NFTNL_SET_ELEM_FLAGS) {
        let f = nftnl_set_elem_get_u32(e, attr(NFTNL_SET_ELEM_FLAGS))
        if f != 0 { k.flags = f }
      }
      if has(NFTNL_SET_ELEM_VERDICT) {
        let code = Int32(bitPattern: nftnl_set_elem_get_u32(e, attr(NFTNL_SET_ELEM_VERDICT)))
        let chain =
          has(NFTNL_SET_ELEM_CHAIN)
          ? string(nftnl_set_elem_get_str(e, attr(NFTNL_SET_ELEM_CHAIN))) : nil
        k.verdict = (code, chain)
      } else if has(NFTNL_SET_ELEM_DATA) {
        k.data = data(NFTNL_SET_ELEM_DATA)
      }
      if has(NFTNL_SET_ELEM_USERDATA) { k.userdata = data(NFTNL_SET_ELEM_USERDATA) }
      out.append(k)
    }
    return (name, out)
  }
}

/// Iterates a set's elements (the iterator is the only object owned here).
final class ElementIterator {
  private let ptr: OpaquePointer
  private let set: NLSet  // keeps the set alive while iterating
  init(_ set: NLSet) {
    self.set = set
    ptr = nftnl_set_elems_iter_create(set.ptr)
  }
  deinit { nftnl_set_elems_iter_destroy(ptr) }
  func next() -> OpaquePointer? { nftnl_set_elems_iter_next(ptr) }
}

/// A libnftnl ruleset generation (`NFT_MSG_NEWGEN` reply).
final class NLGen {
  let ptr: OpaquePointer
  init() { ptr = nftnl_gen_alloc() }
  deinit { nftnl_gen_free(ptr) }

  static func parse(_ nlh: UnsafePointer<nlmsghdr>) -> UInt32? {
    let g = NLGen()
    guard nftnl_gen_nlmsg_parse(nlh, g.ptr) >= 0 else { return nil }
    return nftnl_gen_get_u32(g.ptr, attr(NFTNL_GEN_ID))
  }
}
