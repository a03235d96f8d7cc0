import IPAddr

/// Parsing and canonical formatting of the address and name strings found in Kubernetes objects.
enum Normalize {
  /// An address read from an object, with its canonical text.
  struct ParsedIP {
    var address: IPAddress
    var text: String
    /// The text had IPv4 parts with leading zeros, read as decimal.
    var hadLeadingZeros: Bool
  }

  /// A prefix read from an object, with its canonical text (address masked to the prefix).
  struct ParsedCIDR {
    var cidr: CIDR
    var text: String
    var hadLeadingZeros: Bool
  }

  /// Parses an IP address the way Kubernetes' legacy parser does (leading zeros are decimal).
  /// IPv4-mapped IPv6 forms (`::ffff:a.b.c.d`) are refused: their family is ambiguous.
  static func ip(_ text: String) -> Result<ParsedIP, FieldProblem> {
    guard let parsed = IPAddress.parse(text) else {
      return .failure(FieldProblem("invalid IP address \(quote(text))"))
    }
    if case .v6(let hi, let lo) = parsed.address, hi == 0, lo >> 32 == 0xffff {
      return .failure(
        FieldProblem(
          "invalid IP address \(quote(text)): IPv4-mapped IPv6 addresses are not supported"))
    }
    return .success(
      ParsedIP(
        address: parsed.address, text: parsed.address.description,
        hadLeadingZeros: parsed.hadLeadingZeros))
  }

  /// Parses `address/length`. Leading zeros in IPv4 parts or in the length are read as decimal.
  static func cidr(_ text: String) -> Result<ParsedCIDR, FieldProblem> {
    let invalid = FieldProblem("invalid CIDR \(quote(text))")
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2 else { return .failure(invalid) }
    let lengthText = parts[1]
    guard !lengthText.isEmpty, lengthText.count <= 3,
      lengthText.allSatisfy({ $0 >= "0" && $0 <= "9" }), let length = Int(lengthText)
    else { return .failure(invalid) }
    let address: ParsedIP
    switch ip(String(parts[0])) {
    case .success(let a): address = a
    case .failure: return .failure(invalid)
    }
    let maxLength = address.address.family == .ipv4 ? 32 : 128
    guard length <= maxLength else { return .failure(invalid) }
    let cidr = CIDR(address: address.address, prefixLength: length)
    let zeros = address.hadLeadingZeros || (lengthText.count > 1 && lengthText.first == "0")
    return .success(ParsedCIDR(cidr: cidr, text: cidr.description, hadLeadingZeros: zeros))
  }

  /// The warning text for a value whose leading zeros were read as decimal.
  static func leadingZerosWarning(_ original: String, _ canonical: String) -> String {
    "\(quote(original)) has leading zeros; read as decimal and normalized to \(quote(canonical))"
  }

  /// `"text"` with quotes and backslashes escaped, for messages.
  static func quote(_ text: String) -> String {
    var out = "\""
    for ch in text.unicodeScalars {
      switch ch {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\t": out += "\\t"
      default:
        if ch.value < 0x20 || ch.value == 0x7f {
          out += "\\u{\(String(ch.value, radix: 16))}"
        } else {
          out.unicodeScalars.append(ch)
        }
      }
    }
    return out + "\""
  }

  // MARK: Names

  private static func isLowerAlnum(_ c: Character) -> Bool {
    (c >= "a" && c <= "z") || (c >= "0" && c <= "9")
  }

  /// RFC 1123 label: at most 63 lower-case alphanumerics or '-', starting and ending alphanumeric.
  static func isDNSLabel(_ s: String) -> Bool {
    guard !s.isEmpty, s.count <= 63, let first = s.first, let last = s.last,
      isLowerAlnum(first), isLowerAlnum(last)
    else { return false }
    return s.allSatisfy { isLowerAlnum($0) || $0 == "-" }
  }

  /// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
  static func isDNSSubdomain(_ s: String) -> Bool {
    guard !s.isEmpty, s.count <= 253 else { return false }
    return s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy {
      isDNSLabel(String($0))
    }
  }

  /// IANA service name (a named `targetPort`): at most 15 lower-case alphanumerics or '-', with
  /// at least one letter, no leading, trailing or doubled '-'.
  static func isIANAServiceName(_ s: String) -> Bool {
    guard !s.isEmpty, s.count <= 15, s.first != "-", s.last != "-", !s.contains("--") else {
      return false
    }
    return s.allSatisfy { isLowerAlnum($0) || $0 == "-" }
      && s.contains { $0 >= "a" && $0 <= "z" }
  }
}

/// A problem found at some field, before the field's path is known.
struct FieldProblem: Error, Sendable {
  var message: String
  init(_ message: String) { self.message = message }
}
