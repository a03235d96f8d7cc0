#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// An IPv4 or IPv6 address in network byte order.
public enum IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
  case v4(UInt32)
  case v6(UInt64, UInt64)

  public enum Family: String, Sendable, Hashable, Comparable, CaseIterable {
    case ipv4 = "IPv4"
    case ipv6 = "IPv6"
    public static func < (a: Family, b: Family) -> Bool { a == .ipv4 && b == .ipv6 }
  }

  public var family: Family {
    if case .v4 = self { return .ipv4 }
    return .ipv6
  }

  /// Parses an address. IPv4 parts with leading zeros are read as decimal (as Kubernetes'
  /// "sloppy" parser does) and `hadLeadingZeros` reports it so callers can warn.
  public static func parse(_ text: String) -> (address: IPAddress, hadLeadingZeros: Bool)? {
    if text.contains(":") {
      var buf = in6_addr()
      let ok = text.withCString { inet_pton(AF_INET6, $0, &buf) }
      guard ok == 1 else { return nil }
      let bytes = withUnsafeBytes(of: &buf) { Array($0) }
      var hi: UInt64 = 0
      var lo: UInt64 = 0
      for i in 0..<8 { hi = hi << 8 | UInt64(bytes[i]) }
      for i in 8..<16 { lo = lo << 8 | UInt64(bytes[i]) }
      return (.v6(hi, lo), false)
    }
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    guard parts.count == 4 else { return nil }
    var value: UInt32 = 0
    var zeros = false
    for p in parts {
      guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0 >= "0" && $0 <= "9" }),
        let n = UInt32(p), n <= 255
      else { return nil }
      if p.count > 1 && p.first == "0" { zeros = true }
      value = value << 8 | n
    }
    return (.v4(value), zeros)
  }

  /// Parses an address, returning nil on any error.
  public init?(_ text: String) {
    guard let r = IPAddress.parse(text) else { return nil }
    self = r.address
  }

  public var description: String {
    switch self {
    case .v4(let v):
      return "\(v >> 24).\(v >> 16 & 0xff).\(v >> 8 & 0xff).\(v & 0xff)"
    case .v6:
      var addr = in6_addr()
      let b = bytes
      withUnsafeMutableBytes(of: &addr) { raw in
        for i in 0..<16 { raw[i] = b[i] }
      }
      var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
      _ = inet_ntop(AF_INET6, &addr, &out, socklen_t(out.count))
      return out.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
  }

  /// The address bytes in network order (4 or 16).
  public var bytes: [UInt8] {
    switch self {
    case .v4(let v):
      return [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)]
    case .v6(let hi, let lo):
      var out: [UInt8] = []
      out.reserveCapacity(16)
      for i in (0..<8).reversed() { out.append(UInt8(hi >> (UInt64(i) * 8) & 0xff)) }
      for i in (0..<8).reversed() { out.append(UInt8(lo >> (UInt64(i) * 8) & 0xff)) }
      return out
    }
  }

  public var isLoopback: Bool {
    switch self {
    case .v4(let v): return v >> 24 == 127
    case .v6(let hi, let lo): return hi == 0 && lo == 1
    }
  }

  public var isUnspecified: Bool {
    switch self {
    case .v4(let v): return v == 0
    case .v6(let hi, let lo): return hi == 0 && lo == 0
    }
  }

  public static func < (a: IPAddress, b: IPAddress) -> Bool {
    switch (a, b) {
    case (.v4(let x), .v4(let y)): return x < y
    case (.v4, .v6): return true
    case (.v6, .v4): return false
    case (.v6(let ah, let al), .v6(let bh, let bl)): return ah < bh || (ah == bh && al < bl)
    }
  }
}

/// An address prefix such as `10.244.0.0/16`; the address is masked to the prefix.
public struct CIDR: Hashable, Sendable, Comparable, CustomStringConvertible {
  public let address: IPAddress
  public let prefixLength: Int

  public init?(_ text: String) {
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2, let a = IPAddress(String(parts[0])),
      parts[1].allSatisfy({ $0 >= "0" && $0 <= "9" }), let len = Int(parts[1])
    else { return nil }
    let maxLen = a.family == .ipv4 ? 32 : 128
    guard len >= 0, len <= maxLen, !parts[1].isEmpty else { return nil }
    self.init(address: a, prefixLength: len)
  }

  public init(address: IPAddress, prefixLength: Int) {
    self.prefixLength = prefixLength
    switch address {
    case .v4(let v):
      let mask: UInt32 = prefixLength == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefixLength)
      self.address = .v4(v & mask)
    case .v6(let hi, let lo):
      let hiMask: UInt64 =
        prefixLength >= 64 ? ~0 : (prefixLength == 0 ? 0 : ~UInt64(0) << UInt64(64 - prefixLength))
      let loMask: UInt64 =
        prefixLength <= 64 ? 0 : (prefixLength == 128 ? ~0 : ~UInt64(0) << UInt64(128 - prefixLength))
      self.address = .v6(hi & hiMask, lo & loMask)
    }
  }

  public var family: IPAddress.Family { address.family }

  /// True when the prefix covers exactly one address.
  public var isHost: Bool { prefixLength == (family == .ipv4 ? 32 : 128) }

  public func contains(_ ip: IPAddress) -> Bool {
    guard ip.family == family else { return false }
    return CIDR(address: ip, prefixLength: prefixLength).address == address
  }

  public var description: String { "\(address)/\(prefixLength)" }

  public static func < (a: CIDR, b: CIDR) -> Bool {
    a.address < b.address || (a.address == b.address && a.prefixLength < b.prefixLength)
  }
}
