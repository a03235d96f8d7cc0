internal import Yams

/// A parsed YAML/JSON document: scalars, mappings with hashed keys, sequences, each with the
/// line it starts on. Decoding reads this tree through ``TreeDecoder``, which is much faster than
/// decoding Yams nodes (whose key lookups resolve tags with regular expressions) and follows the
/// Kubernetes (JSON) typing rules: numbers and booleans must be plain, unquoted scalars.
indirect enum Tree: Sendable {
  case scalar(Scalar)
  case mapping(Mapping)
  case sequence([Tree], line: Int?)

  struct Scalar: Sendable {
    var string: String
    /// Unquoted and without an explicit `!!str` tag: may be read as a number, boolean or null.
    var plain: Bool
    var line: Int?
  }

  struct Mapping: Sendable {
    var keys: [String]
    var values: [String: Tree]
    var line: Int?
  }

  var line: Int? {
    switch self {
    case .scalar(let s): s.line
    case .mapping(let m): m.line
    case .sequence(_, let line): line
    }
  }

  var isNull: Bool {
    guard case .scalar(let s) = self, s.plain else { return false }
    switch s.string {
    case "", "~", "null", "Null", "NULL": return true
    default: return false
    }
  }

  subscript(key: String) -> Tree? {
    guard case .mapping(let m) = self else { return nil }
    return m.values[key]
  }

  /// `"text"`, `an object`, `a list` or `null`, for messages.
  var summary: String {
    switch self {
    case .scalar(let s): isNull ? "null" : Normalize.quote(s.string)
    case .mapping: "an object"
    case .sequence: "a list"
    }
  }

  /// Converts a Yams node. Merge keys (`<<`) are applied; later keys win over merged ones.
  init(_ node: Yams.Node) {
    switch node {
    case .scalar(let s):
      let plain =
        (s.style == .plain || s.style == .any) && s.tag.description != Tag.Name.str.rawValue
      self = .scalar(Scalar(string: s.string, plain: plain, line: s.mark?.line))
    case .sequence(let seq):
      self = .sequence(seq.map { Tree($0) }, line: seq.mark?.line)
    case .mapping(let m):
      var keys: [String] = []
      var values: [String: Tree] = [:]
      var merged: [Tree.Mapping] = []
      for (k, v) in m {
        let key = k.scalar?.string ?? ""
        if k.scalar?.style == .plain, key == "<<" {
          switch Tree(v) {
          case .mapping(let mm): merged.append(mm)
          case .sequence(let items, _):
            for case .mapping(let mm) in items { merged.append(mm) }
          default: break
          }
          continue
        }
        if values.updateValue(Tree(v), forKey: key) == nil { keys.append(key) }
      }
      for mm in merged {
        for k in mm.keys where values[k] == nil {
          values[k] = mm.values[k]
          keys.append(k)
        }
      }
      self = .mapping(Mapping(keys: keys, values: values, line: m.mark?.line))
    case .alias(let a):
      self = .scalar(Scalar(string: "", plain: true, line: a.mark?.line))
    }
  }
}

/// A sequence position in a coding path (`Index 3`, like Foundation's and Yams' decoders).
struct IndexKey: CodingKey {
  var stringValue: String { "Index \(index)" }
  var intValue: Int? { index }
  var index: Int
  init(_ index: Int) { self.index = index }
  init?(stringValue: String) { nil }
  init?(intValue: Int) { self.index = intValue }
}

/// Decodes `Decodable` values from a ``Tree``; errors are `DecodingError`s with the coding path.
struct TreeDecoder: Decoder {
  let tree: Tree
  let codingPath: [any CodingKey]
  var userInfo: [CodingUserInfoKey: Any] { [:] }

  init(_ tree: Tree, codingPath: [any CodingKey] = []) {
    self.tree = tree
    self.codingPath = codingPath
  }

  static func decode<T: Decodable>(_ type: T.Type, from tree: Tree) throws -> T {
    try T(from: TreeDecoder(tree))
  }

  func mismatch(_ type: Any.Type) -> DecodingError {
    DecodingError.typeMismatch(
      type, DecodingError.Context(codingPath: codingPath, debugDescription: "got \(tree.summary)"))
  }

  func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
    guard case .mapping(let m) = tree else { throw mismatch([String: Any].self) }
    return KeyedDecodingContainer(KeyedTreeContainer<Key>(mapping: m, codingPath: codingPath))
  }

  func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
    guard case .sequence(let items, _) = tree else { throw mismatch([Any].self) }
    return UnkeyedTreeContainer(items: items, codingPath: codingPath)
  }

  func singleValueContainer() throws -> any SingleValueDecodingContainer { self }
}

extension TreeDecoder: SingleValueDecodingContainer {
  func decodeNil() -> Bool { tree.isNull }

  private func scalar(_ type: Any.Type) throws -> Tree.Scalar {
    guard case .scalar(let s) = tree else { throw mismatch(type) }
    if tree.isNull {
      throw DecodingError.valueNotFound(
        type, DecodingError.Context(codingPath: codingPath, debugDescription: "got null"))
    }
    return s
  }

  func decode(_ type: Bool.Type) throws -> Bool {
    let s = try scalar(type)
    guard s.plain else { throw mismatch(type) }
    switch s.string {
    case "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON": return true
    case "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF": return false
    default: throw mismatch(type)
    }
  }

  func decode(_ type: String.Type) throws -> String { try scalar(type).string }

  func decode(_ type: Double.Type) throws -> Double {
    let s = try scalar(type)
    guard s.plain, let v = Double(s.string.replacingUnderscores) else { throw mismatch(type) }
    return v
  }

  func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }

  /// YAML 1.1 integers as Kubernetes' YAML reader accepts them: decimal, `0x` hex, `0o` or
  /// leading-zero octal, `0b` binary, optional sign, `_` separators; plain scalars only.
  private func integer<I: FixedWidthInteger>(_ type: I.Type) throws -> I {
    let s = try scalar(type)
    guard s.plain else { throw mismatch(type) }
    var text = Substring(s.string.replacingUnderscores)
    var sign = ""
    if let first = text.first, first == "-" || first == "+" {
      if first == "-" { sign = "-" }
      text = text.dropFirst()
    }
    let radix: Int
    if text.hasPrefix("0x") {
      radix = 16
      text = text.dropFirst(2)
    } else if text.hasPrefix("0o") {
      radix = 8
      text = text.dropFirst(2)
    } else if text.hasPrefix("0b") {
      radix = 2
      text = text.dropFirst(2)
    } else if text.count > 1, text.hasPrefix("0") {
      radix = 8
      text = text.dropFirst()
    } else {
      radix = 10
    }
    guard !text.isEmpty, text.first != "-", text.first != "+",
      let v = I(sign + text, radix: radix)
    else { throw mismatch(type) }
    return v
  }

  func decode(_ type: Int.Type) throws -> Int { try integer(type) }
  func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
  func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
  func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
  func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
  func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
  func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
  func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
  func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
  func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

  func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: self) }
}

private struct KeyedTreeContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
  let mapping: Tree.Mapping
  let codingPath: [any CodingKey]

  var allKeys: [Key] { mapping.keys.compactMap { Key(stringValue: $0) } }

  func contains(_ key: Key) -> Bool { mapping.values[key.stringValue] != nil }

  private func child(_ key: Key) throws -> TreeDecoder {
    guard let value = mapping.values[key.stringValue] else {
      throw DecodingError.keyNotFound(
        key, DecodingError.Context(codingPath: codingPath, debugDescription: "missing"))
    }
    return TreeDecoder(value, codingPath: codingPath + [key])
  }

  func decodeNil(forKey key: Key) throws -> Bool { try child(key).decodeNil() }
  func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try child(key).decode(type) }
  func decode(_ type: String.Type, forKey key: Key) throws -> String { try child(key).decode(type) }
  func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try child(key).decode(type) }
  func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try child(key).decode(type) }
  func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try child(key).decode(type) }
  func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try child(key).decode(type) }
  func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try child(key).decode(type) }
  func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try child(key).decode(type) }
  func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try child(key).decode(type) }
  func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try child(key).decode(type) }
  func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try child(key).decode(type) }
  func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try child(key).decode(type) }
  func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try child(key).decode(type) }
  func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try child(key).decode(type) }
  func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
    try T(from: child(key))
  }

  func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
    -> KeyedDecodingContainer<NestedKey>
  {
    try child(key).container(keyedBy: type)
  }

  func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
    try child(key).unkeyedContainer()
  }

  func superDecoder() throws -> any Decoder {
    TreeDecoder(.mapping(mapping), codingPath: codingPath)
  }
  func superDecoder(forKey key: Key) throws -> any Decoder { try child(key) }
}

private struct UnkeyedTreeContainer: UnkeyedDecodingContainer {
  let items: [Tree]
  let codingPath: [any CodingKey]
  var currentIndex = 0

  init(items: [Tree], codingPath: [any CodingKey]) {
    self.items = items
    self.codingPath = codingPath
  }

  var count: Int? { items.count }
  var isAtEnd: Bool { currentIndex >= items.count }

  private mutating func next(_ type: Any.Type) throws -> TreeDecoder {
    guard !isAtEnd else {
      throw DecodingError.valueNotFound(
        type,
        DecodingError.Context(
          codingPath: codingPath + [IndexKey(currentIndex)], debugDescription: "at end"))
    }
    defer { currentIndex += 1 }
    return TreeDecoder(items[currentIndex], codingPath: codingPath + [IndexKey(currentIndex)])
  }

  mutating func decodeNil() throws -> Bool {
    guard !isAtEnd, items[currentIndex].isNull else { return false }
    currentIndex += 1
    return true
  }

  mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: next(type)) }

  mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
    -> KeyedDecodingContainer<NestedKey>
  {
    try next(type).container(keyedBy: type)
  }

  mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
    try next([Any].self).unkeyedContainer()
  }

  mutating func superDecoder() throws -> any Decoder { try next(Any.self) }
}

extension String {
  fileprivate var replacingUnderscores: String {
    contains("_") ? String(filter { $0 != "_" }) : self
  }
}
