import IPAddr

/// The address family of an nftables table.
public enum TableFamily: String, Sendable, Hashable, Comparable {
  case ip, ip6
  public static func < (a: TableFamily, b: TableFamily) -> Bool { a == .ip && b == .ip6 }
}

/// A complete rule set: the tables nftproxy owns, plus comment lines for the text dump.
public struct Ruleset: Sendable, Equatable {
  /// Lines printed as `# ...` at the top of the text dump (not sent to the kernel).
  public var headerComments: [String]
  public var tables: [Table]

  public init(headerComments: [String] = [], tables: [Table] = []) {
    self.headerComments = headerComments
    self.tables = tables
  }
}

public struct Table: Sendable, Equatable {
  public var family: TableFamily
  public var name: String
  public var comment: String?
  /// Named sets and maps, in the order they are created.
  public var sets: [NamedSet]
  /// Base and regular chains, in the order they are created.
  public var chains: [Chain]

  public init(
    family: TableFamily, name: String, comment: String? = nil, sets: [NamedSet] = [],
    chains: [Chain] = []
  ) {
    self.family = family
    self.name = name
    self.comment = comment
    self.sets = sets
    self.chains = chains
  }
}

/// Data types of set keys and map values, with their nft names.
public enum DataType: String, Sendable, Hashable {
  case ipv4Addr = "ipv4_addr"
  case ipv6Addr = "ipv6_addr"
  case inetProto = "inet_proto"
  case inetService = "inet_service"
  case mark = "mark"
  case verdict = "verdict"

  /// Length in bytes of one value as the kernel stores it (before register padding).
  public var byteLength: Int {
    switch self {
    case .ipv4Addr: return 4
    case .ipv6Addr: return 16
    case .inetProto: return 1
    case .inetService: return 2
    case .mark: return 4
    case .verdict: return 0
    }
  }
}

public enum SetFlag: String, Sendable, Hashable, Comparable, CaseIterable {
  case constant, interval, timeout, dynamic
  public static func < (a: SetFlag, b: SetFlag) -> Bool {
    SetFlag.allCases.firstIndex(of: a)! < SetFlag.allCases.firstIndex(of: b)!
  }
}

/// A named set (no `dataType`) or map (`dataType` set; `.verdict` for a verdict map).
public struct NamedSet: Sendable, Equatable {
  public var name: String
  public var keyType: [DataType]
  public var dataType: DataType?
  public var flags: [SetFlag]
  /// Default element timeout in seconds (for `timeout` sets).
  public var timeout: Int?
  /// Maximum element count (needed for dynamic sets).
  public var size: Int?
  public var comment: String?
  public var elements: [SetElement]

  public init(
    name: String, keyType: [DataType], dataType: DataType? = nil, flags: [SetFlag] = [],
    timeout: Int? = nil, size: Int? = nil, comment: String? = nil, elements: [SetElement] = []
  ) {
    self.name = name
    self.keyType = keyType
    self.dataType = dataType
    self.flags = flags
    self.timeout = timeout
    self.size = size
    self.comment = comment
    self.elements = elements
  }

  public var isMap: Bool { dataType != nil }
}

/// One value of a set key or map datum.
public enum Value: Sendable, Hashable, Comparable {
  case address(IPAddress)
  /// An interval given as a prefix (interval sets and prefix matches).
  case prefix(CIDR)
  case proto(L4Proto)
  case port(UInt16)
  case integer(UInt32)
}

public enum L4Proto: String, Sendable, Hashable, Comparable, CaseIterable {
  case tcp, udp, sctp
  public var number: UInt8 {
    switch self {
    case .tcp: return 6
    case .udp: return 17
    case .sctp: return 132
    }
  }
  public static func < (a: L4Proto, b: L4Proto) -> Bool { a.number < b.number }
}

public enum Verdict: Sendable, Hashable {
  case accept, drop, `return`
  case jump(String)
  case goto(String)

  /// The chain this verdict enters, if any.
  public var target: String? {
    switch self {
    case .jump(let c), .goto(let c): return c
    default: return nil
    }
  }
}

public struct SetElement: Sendable, Hashable {
  /// One value per key component (a concatenation when more than one).
  public var key: [Value]
  public var data: ElementData?
  public var comment: String?

  public init(key: [Value], data: ElementData? = nil, comment: String? = nil) {
    self.key = key
    self.data = data
    self.comment = comment
  }
}

public enum ElementData: Sendable, Hashable {
  case verdict(Verdict)
  case value([Value])
}

public enum ChainType: String, Sendable, Hashable {
  case filter, nat
}

public enum Hook: String, Sendable, Hashable {
  case prerouting, input, forward, output, postrouting
}

/// The hook of a base chain. Priorities are numeric (nft's `dstnat` is -100, `srcnat` 100, `filter` 0).
public struct BaseChainSpec: Sendable, Hashable {
  public var type: ChainType
  public var hook: Hook
  public var priority: Int
  public var policy: Verdict

  public init(type: ChainType, hook: Hook, priority: Int, policy: Verdict = .accept) {
    self.type = type
    self.hook = hook
    self.priority = priority
    self.policy = policy
  }
}

public struct Chain: Sendable, Equatable {
  public var name: String
  public var base: BaseChainSpec?
  public var comment: String?
  public var rules: [Rule]

  public init(name: String, base: BaseChainSpec? = nil, comment: String? = nil, rules: [Rule] = []) {
    self.name = name
    self.base = base
    self.comment = comment
    self.rules = rules
  }
}

public struct Rule: Sendable, Hashable {
  public var statements: [Statement]
  public var comment: String?

  public init(_ statements: [Statement], comment: String? = nil) {
    self.statements = statements
    self.comment = comment
  }
}

/// Packet or connection properties a rule reads.
public enum Selector: Sendable, Hashable {
  case saddr(TableFamily)
  case daddr(TableFamily)
  /// `meta l4proto`
  case l4proto
  /// `th dport` (transport header destination port)
  case thDport
  /// `meta mark`
  case mark
  /// `numgen random mod N`
  case numgenRandom(mod: UInt32)

  /// The data type this selector produces, as used in set keys.
  public var dataType: DataType {
    switch self {
    case .saddr(let f), .daddr(let f): return f == .ip ? .ipv4Addr : .ipv6Addr
    case .l4proto: return .inetProto
    case .thDport: return .inetService
    case .mark, .numgenRandom: return .mark
    }
  }
}

public enum CompareOp: String, Sendable, Hashable {
  case eq = "=="
  case neq = "!="
}

public enum CtStateBit: String, Sendable, Hashable {
  case new
}

public enum CtStatusBit: String, Sendable, Hashable {
  case dnat
}

public enum FibAddress: String, Sendable, Hashable {
  case saddr, daddr
}

/// A statement of a rule. Each maps to a fixed sequence of kernel expressions.
public enum Statement: Sendable, Hashable {
  /// `SELECTOR [!=] VALUE` (a prefix value matches a network).
  case match(Selector, CompareOp, Value)
  /// `meta mark & MASK == VALUE` / `!=`.
  case markMask(mask: UInt32, CompareOp, UInt32)
  /// `ct state new`
  case ctState(CtStateBit)
  /// `ct status dnat`
  case ctStatus(CtStatusBit)
  /// `fib saddr|daddr type local`
  case fibTypeLocal(FibAddress)
  /// `KEY . KEY ... [!=] @set`
  case lookup([Selector], set: String, negate: Bool)
  /// `KEY . KEY ... vmap @map`
  case vmap([Selector], map: String)
  /// `meta mark set meta mark | VALUE`
  case markOr(UInt32)
  /// `meta mark set meta mark ^ VALUE`
  case markXor(UInt32)
  /// `update @set { KEY }`
  case updateSet(Selector, set: String)
  /// `dnat to ADDR[:PORT]` (requires a preceding `meta l4proto` match when a port is given)
  case dnat(IPAddress, port: UInt16?)
  /// `masquerade [fully-random]`
  case masquerade(fullyRandom: Bool)
  /// `reject` (ICMP port unreachable / ICMPv6 port unreachable)
  case reject
  case counter
  case verdict(Verdict)
}
