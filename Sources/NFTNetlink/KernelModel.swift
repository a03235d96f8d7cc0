import NFTables

/// Plain-Swift description of the nf_tables objects nftproxy sends and reads back. The encoder
/// lowers the IR into these values; the C layer (`C/`) turns them into libnftnl objects and
/// netlink messages, and parses kernel dumps back into them. Register numbers, byte orders and
/// attribute values follow what `nft` 1.0.6 sends for the same text.
enum K {
  /// Registers as nft numbers them: 0 is the verdict register, 1…4 the 16-byte registers,
  /// 8…23 the 4-byte ones.
  typealias Reg = UInt32

  static let verdictReg: Reg = 0

  /// The register a value starting at 32-bit slot `slot` is loaded into (nft's numbering).
  static func reg(slot: Int) -> Reg {
    slot % 4 == 0 ? Reg(1 + slot / 4) : Reg(8 + slot)
  }

  enum PayloadBase: UInt32 {
    case network = 1
    case transport = 2
  }

  enum MetaKey: UInt32 {
    case mark = 3
    case l4proto = 16
  }

  enum CtKey: UInt32 {
    case state = 0
    case status = 2
  }

  enum CmpOp: UInt32 {
    case eq = 0
    case neq = 1
  }

  /// Verdict codes of `NFTA_VERDICT_CODE`.
  enum VerdictCode {
    static let drop: Int32 = 0
    static let accept: Int32 = 1
    static let jump: Int32 = -3
    static let goto: Int32 = -4
    static let `return`: Int32 = -5
  }

  /// One expression of a rule.
  enum Expr: Equatable {
    case payload(base: PayloadBase, offset: UInt32, len: UInt32, dreg: Reg)
    case meta(key: MetaKey, dreg: Reg)
    case metaSet(key: MetaKey, sreg: Reg)
    case ct(key: CtKey, dreg: Reg)
    /// `flags`: 1 saddr, 2 daddr; `result` 3 = address type.
    case fib(flags: UInt32, result: UInt32, dreg: Reg)
    /// `type` 1 = random.
    case numgen(dreg: Reg, modulus: UInt32, type: UInt32, offset: UInt32)
    /// `explicitOp`: nft sets `NFTA_BITWISE_OP` for `meta mark` arithmetic but not for flag
    /// tests or prefixes.
    case bitwise(sreg: Reg, dreg: Reg, len: UInt32, mask: [UInt8], xor: [UInt8], explicitOp: Bool)
    case cmp(sreg: Reg, op: CmpOp, data: [UInt8])
    /// `dreg` set (to the verdict register) for a verdict map; `flags` 1 = inverted.
    case lookup(set: String, setID: UInt32?, sreg: Reg, dreg: Reg?, flags: UInt32)
    /// `op` 1 = update.
    case dynset(set: String, setID: UInt32?, op: UInt32, sreg: Reg)
    case immediate(dreg: Reg, data: [UInt8])
    case verdict(code: Int32, chain: String?)
    /// `type` 1 = dnat; `flags` 2 = protocol range given.
    case nat(type: UInt32, family: UInt32, regAddr: Reg, regProto: Reg?, flags: UInt32?)
    case masq(flags: UInt32?)
    case reject(type: UInt32, code: UInt8)
    case counter
  }

  struct Table: Equatable {
    var family: TableFamily
    var name: String
    var flags: UInt32?
    var userdata: [UInt8]?
  }

  struct Chain: Equatable {
    var family: TableFamily
    var table: String
    var name: String
    var type: String?
    var hooknum: UInt32?
    var priority: Int32?
    var policy: UInt32?
    var userdata: [UInt8]?
  }

  struct Rule: Equatable {
    var family: TableFamily
    var table: String
    var chain: String
    var exprs: [Expr]
    var userdata: [UInt8]?
    /// Read back with an expression nftproxy never writes.
    var foreign = false
  }

  struct Set: Equatable {
    var family: TableFamily
    var table: String
    var name: String
    var flags: UInt32
    var keyType: UInt32
    var keyLen: UInt32
    var dataType: UInt32?
    var dataLen: UInt32?
    var id: UInt32?
    var size: UInt32?
    var timeoutMs: UInt64?
    var userdata: [UInt8]?
  }

  struct Element: Equatable {
    var key: [UInt8]
    var flags: UInt32?
    var verdict: (code: Int32, chain: String?)?
    var data: [UInt8]?
    var userdata: [UInt8]?

    static func == (a: Element, b: Element) -> Bool {
      a.key == b.key && a.flags == b.flags && a.verdict?.code == b.verdict?.code
        && a.verdict?.chain == b.verdict?.chain && a.data == b.data && a.userdata == b.userdata
    }
  }

  enum SetFlag {
    static let constant: UInt32 = 0x2
    static let interval: UInt32 = 0x4
    static let map: UInt32 = 0x8
    static let timeout: UInt32 = 0x10
    static let eval: UInt32 = 0x20
  }

  static let elementIntervalEnd: UInt32 = 1

  /// One netlink message of a batch.
  enum Message {
    /// Without flags and userdata (the bare "ensure" add) it changes nothing on an existing table.
    case newTable(Table)
    case delTable(Table)
    case newChain(Chain)
    case delChain(Chain)
    /// `DELRULE` with only table and chain: removes all rules of the chain.
    case flushChain(Chain)
    case newRule(Rule)
    case newSet(Set)
    case delSet(Set)
    /// `DELSETELEM` without elements: removes all elements.
    case flushSet(Set)
    case newElements(Set, [Element])
    case delElements(Set, [Element])
  }
}
