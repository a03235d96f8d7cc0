/// A strict JSON reader producing a ``Tree``. JSON documents are read with it rather than with
/// the YAML parser: it is much faster, and it accepts escapes libyaml refuses (surrogate pairs such
/// as `\ud83d\ude00`, as Python writes them).
struct JSONTreeReader {
  struct SyntaxError: Error {
    var message: String
    var line: Int
    var column: Int
  }

  private let bytes: UnsafeBufferPointer<UInt8>
  private var pos = 0
  private var line = 1
  private var lineStart = 0
  private var depth = 0

  private init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

  /// Parses one JSON value filling the whole text (surrounding white space allowed).
  static func parse(_ text: String) throws(SyntaxError) -> Tree {
    var copy = text
    let result: Result<Tree, SyntaxError> = copy.withUTF8 { buf in
      var reader = JSONTreeReader(buf)
      do throws(SyntaxError) {
        reader.skipSpace()
        let tree = try reader.value()
        reader.skipSpace()
        if reader.pos < buf.count { throw reader.fail("unexpected text after the JSON value") }
        return .success(tree)
      } catch {
        return .failure(error)
      }
    }
    return try result.get()
  }

  /// True when the first non-blank character of `text` opens a JSON object or array.
  static func looksLikeJSON(_ text: String) -> Bool {
    for b in text.utf8 {
      switch b {
      case 0x20, 0x09, 0x0a, 0x0d: continue
      case UInt8(ascii: "{"), UInt8(ascii: "["): return true
      default: return false
      }
    }
    return false
  }

  private func fail(_ message: String) -> SyntaxError {
    SyntaxError(message: message, line: line, column: pos - lineStart + 1)
  }

  private mutating func skipSpace() {
    while pos < bytes.count {
      switch bytes[pos] {
      case 0x20, 0x09, 0x0d: pos += 1
      case 0x0a:
        pos += 1
        line += 1
        lineStart = pos
      default: return
      }
    }
  }

  private mutating func value() throws(SyntaxError) -> Tree {
    guard pos < bytes.count else { throw fail("unexpected end of input") }
    let startLine = line
    switch bytes[pos] {
    case UInt8(ascii: "{"): return try object()
    case UInt8(ascii: "["): return try array()
    case UInt8(ascii: "\""):
      return .scalar(Tree.Scalar(string: try string(), plain: false, line: startLine))
    case UInt8(ascii: "t"): return try literal("true")
    case UInt8(ascii: "f"): return try literal("false")
    case UInt8(ascii: "n"): return try literal("null")
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
    default: throw fail("unexpected character")
    }
  }

  private mutating func enter() throws(SyntaxError) {
    depth += 1
    if depth > 512 { throw fail("nesting too deep") }
  }

  private mutating func object() throws(SyntaxError) -> Tree {
    try enter()
    defer { depth -= 1 }
    let startLine = line
    pos += 1
    var keys: [String] = []
    var values: [String: Tree] = [:]
    skipSpace()
    if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") {
      pos += 1
      return .mapping(Tree.Mapping(keys: keys, values: values, line: startLine))
    }
    while true {
      skipSpace()
      guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else {
        throw fail("expected a string key")
      }
      let key = try string()
      skipSpace()
      guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw fail("expected ':'") }
      pos += 1
      skipSpace()
      let v = try value()
      if values.updateValue(v, forKey: key) == nil { keys.append(key) }
      skipSpace()
      guard pos < bytes.count else { throw fail("unexpected end of input in an object") }
      if bytes[pos] == UInt8(ascii: ",") {
        pos += 1
        continue
      }
      guard bytes[pos] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
      pos += 1
      return .mapping(Tree.Mapping(keys: keys, values: values, line: startLine))
    }
  }

  private mutating func array() throws(SyntaxError) -> Tree {
    try enter()
    defer { depth -= 1 }
    let startLine = line
    pos += 1
    var items: [Tree] = []
    skipSpace()
    if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") {
      pos += 1
      return .sequence(items, line: startLine)
    }
    while true {
      skipSpace()
      items.append(try value())
      skipSpace()
      guard pos < bytes.count else { throw fail("unexpected end of input in an array") }
      if bytes[pos] == UInt8(ascii: ",") {
        pos += 1
        continue
      }
      guard bytes[pos] == UInt8(ascii: "]") else { throw fail("expected ',' or ']'") }
      pos += 1
      return .sequence(items, line: startLine)
    }
  }

  private mutating func literal(_ word: StaticString) throws(SyntaxError) -> Tree {
    let n = word.utf8CodeUnitCount
    guard pos + n <= bytes.count else { throw fail("unexpected end of input") }
    for i in 0..<n where bytes[pos + i] != word.utf8Start[i] { throw fail("unexpected character") }
    pos += n
    return .scalar(Tree.Scalar(string: word.description, plain: true, line: line))
  }

  private mutating func number() throws(SyntaxError) -> Tree {
    let start = pos
    func digits(_ r: inout JSONTreeReader) -> Int {
      let s = r.pos
      while r.pos < r.bytes.count, r.bytes[r.pos] >= 0x30, r.bytes[r.pos] <= 0x39 { r.pos += 1 }
      return r.pos - s
    }
    if bytes[pos] == UInt8(ascii: "-") { pos += 1 }
    let intStart = pos
    let intDigits = digits(&self)
    guard intDigits > 0 else { throw fail("invalid number") }
    if intDigits > 1, bytes[intStart] == UInt8(ascii: "0") {
      throw fail("invalid number (leading zero)")
    }
    if pos < bytes.count, bytes[pos] == UInt8(ascii: ".") {
      pos += 1
      guard digits(&self) > 0 else { throw fail("invalid number") }
    }
    if pos < bytes.count, bytes[pos] == UInt8(ascii: "e") || bytes[pos] == UInt8(ascii: "E") {
      pos += 1
      if pos < bytes.count, bytes[pos] == UInt8(ascii: "+") || bytes[pos] == UInt8(ascii: "-") {
        pos += 1
      }
      guard digits(&self) > 0 else { throw fail("invalid number") }
    }
    let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
    return .scalar(Tree.Scalar(string: text, plain: true, line: line))
  }

  private mutating func hex4() throws(SyntaxError) -> UInt32 {
    guard pos + 4 <= bytes.count else { throw fail("invalid \\u escape") }
    var v: UInt32 = 0
    for _ in 0..<4 {
      let c = bytes[pos]
      let d: UInt32
      switch c {
      case 0x30...0x39: d = UInt32(c - 0x30)
      case 0x41...0x46: d = UInt32(c - 0x41 + 10)
      case 0x61...0x66: d = UInt32(c - 0x61 + 10)
      default: throw fail("invalid \\u escape")
      }
      v = v << 4 | d
      pos += 1
    }
    return v
  }

  private mutating func string() throws(SyntaxError) -> String {
    pos += 1  // opening quote
    let start = pos
    // Fast path: no escapes.
    while pos < bytes.count {
      let c = bytes[pos]
      if c == UInt8(ascii: "\"") {
        let s = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<pos]), as: UTF8.self)
        pos += 1
        return s
      }
      if c == UInt8(ascii: "\\") { break }
      if c < 0x20 { throw fail("control character in a string") }
      pos += 1
    }
    var out = [UInt8](UnsafeBufferPointer(rebasing: bytes[start..<pos]))
    while pos < bytes.count {
      let c = bytes[pos]
      pos += 1
      switch c {
      case UInt8(ascii: "\""):
        return String(decoding: out, as: UTF8.self)
      case UInt8(ascii: "\\"):
        guard pos < bytes.count else { throw fail("unterminated string") }
        let e = bytes[pos]
        pos += 1
        switch e {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0c)
        case UInt8(ascii: "n"): out.append(0x0a)
        case UInt8(ascii: "r"): out.append(0x0d)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
          var scalar = try hex4()
          if (0xD800...0xDBFF).contains(scalar), pos + 6 <= bytes.count,
            bytes[pos] == UInt8(ascii: "\\"), bytes[pos + 1] == UInt8(ascii: "u")
          {
            let save = pos
            pos += 2
            let low = try hex4()
            if (0xDC00...0xDFFF).contains(low) {
              scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else {
              pos = save
            }
          }
          let u = Unicode.Scalar(scalar) ?? "\u{FFFD}"
          out.append(contentsOf: Array(String(Character(u)).utf8))
        default: throw fail("invalid escape")
        }
      default:
        if c < 0x20 { throw fail("control character in a string") }
        out.append(c)
      }
    }
    throw fail("unterminated string")
  }
}
