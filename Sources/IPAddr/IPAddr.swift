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
    if text.utf8.contains(0x3A) {
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
    // IPv4: four decimal parts of 1-3 digits, each at most 255; read byte by byte.
    var value: UInt32 = 0
    var part: UInt32 = 0
    var digits = 0
    var parts = 0
    var zeros = false
    var firstDigitZero = false
    let ok: Bool = text.utf8.withContiguousStorageIfAvailable { buf -> Bool in
      for c in buf {
        if c >= 0x30 && c <= 0x39 {
          if digits == 0 { firstDigitZero = c == 0x30 }
          digits += 1
          part = part * 10 + UInt32(c - 0x30)
          if digits > 3 || part > 255 { return false }
        } else if c == 0x2E {
          guard digits > 0, parts < 3 else { return false }
          if digits > 1 && firstDigitZero { zeros = true }
          value = value << 8 | part
          parts += 1
          part = 0
          digits = 0
        } else {
          return false
        }
      }
      guard digits > 0, parts == 3 else { return false }
      if digits > 1 && firstDigitZero { zeros = true }
      value = value << 8 | part
      return true
    } ?? {
      // Non-contiguous strings (bridged) are rare; copy and retry.
      var copy = text
      copy.makeContiguousUTF8()
      return IPAddress.parse(copy).map { r -> Bool in
        if case .v4(let v) = r.address { value = v }
        zeros = r.hadLeadingZeros
        return true
      } ?? false
    }()
    return ok ? (.v4(value), zeros) : nil
  }

  /// Parses an address, returning nil on any error.
  public init?(_ text: String) {
    guard let r = IPAddress.parse(text) else { return nil }
    self = r.address
  }

  public var description: String {
    switch self {
    case .v4(let v):
      return String(unsafeUninitializedCapacity: 15) { buf in
        var n = 0
        for shift in stride(from: 24, through: 0, by: -8) {
          let octet = Int(v >> UInt32(shift) & 0xff)
          if octet >= 100 {
            buf[n] = UInt8(0x30 + octet / 100)
            n += 1
          }
          if octet >= 10 {
            buf[n] = UInt8(0x30 + octet / 10 % 10)
            n += 1
          }
          buf[n] = UInt8(0x30 + octet % 10)
          n += 1
          if shift > 0 {
            buf[n] = 0x2E
            n += 1
          }
        }
        return n
      }
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
