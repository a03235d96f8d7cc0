import IPAddr

/// Renders a Ruleset as an `nft -f` script. Deterministic: the same Ruleset gives the same bytes.
public enum NFTText {
  /// nft rejects comments longer than this many bytes.
  public static let maxCommentLength = 128

  public static func render(_ ruleset: Ruleset) -> String {
    var out = ""
    out.reserveCapacity(ruleset.tables.reduce(0) { $0 + $1.chains.count * 200 + 1024 })
    for line in ruleset.headerComments {
      out += line.isEmpty ? "#\n" : "# \(line)\n"
    }
    for table in ruleset.tables {
      render(table, into: &out)
    }
    return out
  }

  static func render(_ table: Table, into out: inout String) {
    out += "table \(table.family.rawValue) \(table.name) {\n"
    if let c = table.comment { out += "\tcomment \(quote(c))\n" }
    var first = true
    for set in table.sets {
      if !first { out += "\n" }
      first = false
      render(set, family: table.family, into: &out)
    }
    for chain in table.chains {
      if !first { out += "\n" }
      first = false
      render(chain, into: &out)
    }
    out += "}\n"
  }

  static func render(_ set: NamedSet, family: TableFamily, into out: inout String) {
    out += set.isMap ? "\tmap \(set.name) {\n" : "\tset \(set.name) {\n"
    out += "\t\ttype \(set.keyType.map(\.rawValue).joined(separator: " . "))"
    if let d = set.dataType { out += " : \(d.rawValue)" }
    out += "\n"
    if let s = set.size { out += "\t\tsize \(s)\n" }
    if !set.flags.isEmpty {
      out += "\t\tflags \(set.flags.sorted().map(\.rawValue).joined(separator: ","))\n"
    }
    if let t = set.timeout { out += "\t\ttimeout \(t)s\n" }
    if let c = set.comment { out += "\t\tcomment \(quote(c))\n" }
    if !set.elements.isEmpty {
      out += "\t\telements = {"
      for (i, e) in set.elements.enumerated() {
        out += i == 0 ? " " : ",\n\t\t\t     "
        out += e.key.map(value).joined(separator: " . ")
        if let c = e.comment { out += " comment \(quote(c))" }
        switch e.data {
        case .none: break
        case .verdict(let v): out += " : \(verdict(v))"
        case .value(let vs): out += " : \(vs.map(value).joined(separator: " . "))"
        }
      }
      out += " }\n"
    }
    out += "\t}\n"
  }

  static func render(_ chain: Chain, into out: inout String) {
    out += "\tchain \(chain.name) {\n"
    if let c = chain.comment { out += "\t\tcomment \(quote(c))\n" }
    if let b = chain.base {
      out +=
        "\t\ttype \(b.type.rawValue) hook \(b.hook.rawValue) priority \(b.priority); policy \(verdict(b.policy));\n"
    }
    for rule in chain.rules {
      out += "\t\t"
      out += render(rule)
      out += "\n"
    }
    out += "\t}\n"
  }

  /// One rule as nft writes it, without indentation.
  public static func render(_ rule: Rule) -> String {
    var parts: [String] = []
    parts.reserveCapacity(rule.statements.count)
    for s in rule.statements { parts.append(statement(s)) }
    var line = parts.joined(separator: " ")
    if let c = rule.comment { line += " comment \(quote(c))" }
    return line
  }

  static func selector(_ s: Selector) -> String {
    switch s {
    case .saddr(let f): return "\(f.rawValue) saddr"
    case .daddr(let f): return "\(f.rawValue) daddr"
    case .l4proto: return "meta l4proto"
    case .thDport: return "th dport"
    case .mark: return "meta mark"
    case .numgenRandom(let n): return "numgen random mod \(n)"
    }
  }

  static func statement(_ s: Statement) -> String {
    switch s {
    case .match(let sel, let op, let v):
      return op == .eq ? "\(selector(sel)) \(value(v))" : "\(selector(sel)) != \(value(v))"
    case .markMask(let mask, let op, let v):
      return "meta mark & \(hex(mask)) \(op.rawValue) \(hex(v))"
    case .ctState(let b): return "ct state \(b.rawValue)"
    case .ctStatus(let b): return "ct status \(b.rawValue)"
    case .fibTypeLocal(let a): return "fib \(a.rawValue) type local"
    case .lookup(let keys, let set, let negate):
      return "\(keys.map(selector).joined(separator: " . ")) \(negate ? "!= " : "")@\(set)"
    case .vmap(let keys, let map):
      return "\(keys.map(selector).joined(separator: " . ")) vmap @\(map)"
    case .markOr(let v): return "meta mark set meta mark | \(hex(v))"
    case .markXor(let v): return "meta mark set meta mark ^ \(hex(v))"
    case .updateSet(let sel, let set): return "update @\(set) { \(selector(sel)) }"
    case .dnat(let addr, let port):
      guard let port else { return "dnat to \(addr)" }
      if addr.family == .ipv6 { return "dnat to [\(addr)]:\(port)" }
      return "dnat to \(addr):\(port)"
    case .masquerade(let fr): return fr ? "masquerade fully-random" : "masquerade"
    case .reject: return "reject"
    case .counter: return "counter"
    case .verdict(let v): return verdict(v)
    }
  }

  public static func value(_ v: Value) -> String {
    switch v {
    case .address(let a): return a.description
    case .prefix(let c): return c.isHost ? c.address.description : c.description
    case .proto(let p): return p.rawValue
    case .port(let p): return String(p)
    case .integer(let i): return String(i)
    }
  }

  public static func verdict(_ v: Verdict) -> String {
    switch v {
    case .accept: return "accept"
    case .drop: return "drop"
    case .return: return "return"
    case .jump(let c): return "jump \(c)"
    case .goto(let c): return "goto \(c)"
    }
  }

  static func hex(_ v: UInt32) -> String {
    let h = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - h.count)) + h
  }

  /// Quotes a comment for nft: double quotes are not allowed inside, and length is capped.
  public static func quote(_ s: String) -> String {
    "\"\(sanitizeComment(s))\""
  }

  /// The comment text as it is stored: no double quotes or newlines, at most 128 bytes.
  public static func sanitizeComment(_ s: String) -> String {
    var clean = String(s.map { $0 == "\"" ? "'" : ($0 == "\n" ? " " : $0) })
    while clean.utf8.count > maxCommentLength { clean.removeLast() }
    return clean
  }
}
