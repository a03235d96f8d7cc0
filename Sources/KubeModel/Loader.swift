import Foundation
internal import Yams

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// The objects read from manifests, validated and normalized (see ``Validation``), in the order
/// they appear (files in path order, documents and list items in file order).
public struct LoadResult: Sendable {
  public var state: ClusterState
  /// Human-readable warnings, each naming file, document, object and field where it applies.
  public var warnings: [String]

  public init(state: ClusterState = ClusterState(), warnings: [String] = []) {
    self.state = state
    self.warnings = warnings
  }
}

/// A manifest that cannot be used, located as precisely as possible.
///
/// `description` reads
/// `FILE: document N: Service default/web: spec.ports[1].port: must be between 1 and 65535 (got 70000)`
/// (parts that are unknown are left out; ` (line L)` is appended when the line is known).
public struct ManifestError: Error, Sendable, CustomStringConvertible, LocalizedError {
  /// The file, as given (or as named in ``ManifestLoader/load(text:file:)``).
  public var file: String
  /// 1-based index of the YAML document in the file.
  public var documentIndex: Int?
  /// Position inside a `List` document, e.g. `items[3]`.
  public var item: String?
  /// `Kind namespace/name` (`Kind name` for cluster-scoped kinds).
  public var object: String?
  /// Path of the field inside the object, e.g. `spec.ports[1].port`.
  public var field: String?
  public var message: String
  /// 1-based line in the file where the object or field starts, when known.
  public var line: Int?

  public init(
    file: String, documentIndex: Int? = nil, item: String? = nil, object: String? = nil,
    field: String? = nil, message: String, line: Int? = nil
  ) {
    self.file = file
    self.documentIndex = documentIndex
    self.item = item
    self.object = object
    self.field = field
    self.message = message
    self.line = line
  }

  public var description: String {
    var parts = [file]
    if let documentIndex { parts.append("document \(documentIndex)") }
    if let item { parts.append(item) }
    if let object { parts.append(object) }
    if let field, !field.isEmpty { parts.append(field) }
    parts.append(message)
    return parts.joined(separator: ": ") + (line.map { " (line \($0))" } ?? "")
  }

  public var errorDescription: String? { description }
}

/// Reads Services, EndpointSlices and Nodes from YAML and JSON manifests.
///
/// Multi-document YAML, empty documents, `List` objects (`v1/List`, `ServiceList`,
/// `EndpointSliceList`, `NodeList`, nested lists flattened) are supported. Unknown fields are
/// ignored; unknown kinds are ignored and counted in one warning. Every object goes through
/// ``Validation``. The first invalid object, syntax error or duplicate
/// (same kind and `namespace/name`) stops loading with a ``ManifestError``.
public enum ManifestLoader {
  /// Loads files and directories. Directories are searched recursively for `*.yaml`, `*.yml`
  /// and `*.json` (entries starting with `.` are skipped, as in a mounted ConfigMap); the files of
  /// each directory are read in byte order of their paths. Files named directly are read
  /// whatever their extension. Throws ``ManifestError``.
  public static func load(paths: [String]) throws -> LoadResult {
    let (files, listingWarnings) = try collect(paths)
    var session = Session()
    session.warnings = listingWarnings
    for file in files {
      let text = try readFile(file)
      try session.add(text: text, file: file)
    }
    return session.finish()
  }

  /// Loads manifests from a string; `file` names it in messages. Throws ``ManifestError``.
  public static func load(text: String, file: String) throws -> LoadResult {
    var session = Session()
    try session.add(text: text, file: file)
    return session.finish()
  }

  /// The files ``load(paths:)`` reads for these paths, in the order it reads them.
  public static func manifestFiles(paths: [String]) throws -> [String] {
    try collect(paths).files
  }

  // MARK: Files

  static let extensions: Set<String> = ["yaml", "yml", "json"]

  static func collect(_ paths: [String]) throws(ManifestError) -> (
    files: [String], warnings: [String]
  ) {
    var files: [String] = []
    var warnings: [String] = []
    var seenFiles = Set<String>()
    for path in paths {
      let isDir: Bool
      switch fileKind(path) {
      case .failure(let e): throw ManifestError(file: path, message: e.message)
      case .success(let d): isDir = d
      }
      if !isDir {
        if seenFiles.insert(realPath(path)).inserted { files.append(path) }
        continue
      }
      var found: [String] = []
      var visitedDirs = Set<String>()
      try walk(path, into: &found, visited: &visitedDirs)
      found.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
      if found.isEmpty {
        warnings.append("\(path): no manifest files (*.yaml, *.yml, *.json) found")
      }
      for f in found where seenFiles.insert(realPath(f)).inserted { files.append(f) }
    }
    return (files, warnings)
  }

  private static func walk(_ dir: String, into found: inout [String], visited: inout Set<String>)
    throws(ManifestError)
  {
    guard visited.insert(realPath(dir)).inserted else { return }
    let names: [String]
    do {
      names = try FileManager.default.contentsOfDirectory(atPath: dir)
    } catch {
      throw ManifestError(
        file: dir, message: "cannot list directory: \(error.localizedDescription)")
    }
    for name in names where !name.hasPrefix(".") {
      let path = dir.hasSuffix("/") ? dir + name : dir + "/" + name
      guard case .success(let isDir) = fileKind(path) else { continue }  // dangling link
      if isDir {
        try walk(path, into: &found, visited: &visited)
      } else if let dot = name.lastIndex(of: "."),
        extensions.contains(name[name.index(after: dot)...].lowercased())
      {
        found.append(path)
      }
    }
  }

  private static func realPath(_ path: String) -> String {
    guard let p = realpath(path, nil) else { return path }
    defer { free(p) }
    return String(cString: p)
  }

  private static func errnoMessage(_ code: Int32) -> String {
    String(cString: strerror(code))
  }

  /// Whether `path` is a directory (following links), or why it cannot be used.
  private static func fileKind(_ path: String) -> Result<Bool, FieldProblem> {
    var st = stat()
    guard stat(path, &st) == 0 else { return .failure(FieldProblem(errnoMessage(errno))) }
    return .success((st.st_mode & S_IFMT) == S_IFDIR)
  }

  private static func readFile(_ path: String) throws(ManifestError) -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw ManifestError(file: path, message: errnoMessage(errno)) }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
      let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
      if n < 0 {
        if errno == EINTR { continue }
        throw ManifestError(file: path, message: errnoMessage(errno))
      }
      if n == 0 { break }
      bytes.append(contentsOf: chunk[0..<n])
    }
    guard let text = String(validating: bytes, as: UTF8.self) else {
      throw ManifestError(file: path, message: "not valid UTF-8 text")
    }
    return text
  }
}

/// Where an object was found.
private struct Location {
  var file: String
  var document: Int
  var item: String?

  var description: String {
    "\(file): document \(document)" + (item.map { ": \($0)" } ?? "")
  }

  func error(object: String?, field: String?, _ message: String, line: Int?) -> ManifestError {
    ManifestError(
      file: file, documentIndex: document, item: item, object: object, field: field,
      message: message, line: line)
  }

  func warning(object: String?, field: String, _ message: String, line: Int?) -> String {
    error(object: object, field: field, message, line: line).description
  }
}

/// Accumulates the objects of one load.
private struct Session {
  var state = ClusterState()
  var warnings: [String] = []
  var ignoredKinds: [String: Int] = [:]
  var seen: [String: String] = [:]

  static let listKinds: [String: (apiVersion: String, kind: String)] = [
    "ServiceList": ("v1", "Service"),
    "EndpointSliceList": ("discovery.k8s.io/v1", "EndpointSlice"),
    "NodeList": ("v1", "Node"),
  ]

  func finish() -> LoadResult {
    var warnings = self.warnings
    if !ignoredKinds.isEmpty {
      let list = ignoredKinds.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        .map { "\($0.key) (\($0.value))" }
      warnings.append("ignored kinds: " + list.joined(separator: ", "))
    }
    return LoadResult(state: state, warnings: warnings)
  }

  mutating func add(text: String, file: String) throws(ManifestError) {
    // JSON goes through a dedicated reader; text that is not strict JSON (flow-style YAML, or
    // broken JSON) falls back to the YAML parser, which also reports syntax errors.
    if JSONTreeReader.looksLikeJSON(text), let tree = try? JSONTreeReader.parse(text) {
      if !tree.isNull { try add(node: tree, at: Location(file: file, document: 1), defaults: nil) }
      return
    }
    let parser: Parser
    do {
      parser = try Parser(yaml: text, resolver: .basic)
    } catch {
      throw ManifestError(file: file, documentIndex: 1, message: Self.syntaxMessage(error))
    }
    var document = 0
    while true {
      document += 1
      let root: Yams.Node?
      do {
        root = try parser.nextRoot()
      } catch {
        throw ManifestError(file: file, documentIndex: document, message: Self.syntaxMessage(error))
      }
      guard let root else { break }
      let tree = Tree(root)
      if tree.isNull { continue }
      try add(node: tree, at: Location(file: file, document: document), defaults: nil)
    }
  }

  /// A string field at the top of an object; nil when missing or null.
  func topString(_ node: Tree, _ key: String, _ loc: Location, object: String?)
    throws(ManifestError) -> String?
  {
    guard let value = node[key], !value.isNull else { return nil }
    guard case .scalar(let s) = value else {
      throw loc.error(
        object: object, field: key, "expected a string, got \(value.summary)", line: value.line)
    }
    return s.string
  }

  mutating func add(
    node: Tree, at loc: Location, defaults: (apiVersion: String, kind: String)?
  ) throws(ManifestError) {
    guard case .mapping = node else {
      throw loc.error(
        object: nil, field: nil, "expected an object with apiVersion and kind, got \(node.summary)",
        line: node.line)
    }
    let kind = try topString(node, "kind", loc, object: nil) ?? defaults?.kind ?? ""
    if kind.isEmpty {
      throw loc.error(
        object: nil, field: "kind", "required field is missing", line: node.line)
    }
    let apiVersion =
      try topString(node, "apiVersion", loc, object: kind) ?? defaults?.apiVersion ?? ""
    if apiVersion.isEmpty {
      throw loc.error(
        object: kind, field: "apiVersion", "required field is missing", line: node.line)
    }

    if kind == "List" || Self.listKinds[kind]?.apiVersion == apiVersion {
      try addList(node: node, kind: kind, at: loc)
      return
    }

    switch (apiVersion, kind) {
    case ("v1", "Service"):
      try addObject(Service.self, node: node, kind: kind, namespaced: true, at: loc) {
        (s: Service) throws(ValidationError) in
        try Validation.validateDetailed(s)
      } store: {
        $0.state.services.append($1)
      } label: {
        "Service \($0.key)"
      }
    case ("discovery.k8s.io/v1", "EndpointSlice"):
      try addObject(EndpointSlice.self, node: node, kind: kind, namespaced: true, at: loc) {
        (s: EndpointSlice) throws(ValidationError) in
        try Validation.validateDetailed(s)
      } store: {
        $0.state.endpointSlices.append($1)
      } label: {
        "EndpointSlice \($0.key)"
      }
    case ("v1", "Node"):
      try addObject(Node.self, node: node, kind: kind, namespaced: false, at: loc) {
        (n: Node) throws(ValidationError) in
        try Validation.validateDetailed(n)
      } store: {
        $0.state.nodes.append($1)
      } label: {
        "Node \($0.metadata.name ?? "")"
      }
    default:
      let known = ["Service", "EndpointSlice", "Node"] + Array(Self.listKinds.keys)
      let label = known.contains(kind) ? "\(kind) (\(apiVersion))" : kind
      ignoredKinds[label, default: 0] += 1
    }
  }

  mutating func addList(node: Tree, kind: String, at loc: Location) throws(ManifestError) {
    guard let items = node["items"], !items.isNull else { return }
    guard case .sequence(let seq, _) = items else {
      throw loc.error(
        object: kind, field: "items", "expected a list, got \(items.summary)", line: items.line)
    }
    for (i, item) in seq.enumerated() {
      var itemLoc = loc
      itemLoc.item = (loc.item.map { $0 + "." } ?? "") + "items[\(i)]"
      try add(node: item, at: itemLoc, defaults: Self.listKinds[kind])
    }
  }

  mutating func addObject<T: Decodable>(
    _ type: T.Type, node: Tree, kind: String, namespaced: Bool, at loc: Location,
    validate: (T) throws(ValidationError) -> (T, [FieldWarning]),
    store: (inout Session, T) -> Void,
    label: (T) -> String
  ) throws(ManifestError) {
    // Name the object from the raw document, so that decoding errors can name it too.
    let meta = node["metadata"]
    var name = ""
    var namespace = ""
    if case .scalar(let s) = meta?["name"] { name = s.string }
    if case .scalar(let s) = meta?["namespace"] { namespace = s.string }
    if namespace.isEmpty { namespace = "default" }
    let rawLabel =
      name.isEmpty ? kind : (namespaced ? "\(kind) \(namespace)/\(name)" : "\(kind) \(name)")

    let decoded: T
    do {
      decoded = try TreeDecoder.decode(T.self, from: node)
    } catch let error as DecodingError {
      let (field, message) = Self.translate(error, root: node)
      throw loc.error(
        object: rawLabel, field: field, message, line: Self.line(of: field, in: node))
    } catch {
      throw loc.error(object: rawLabel, field: nil, "\(error)", line: node.line)
    }

    let object: T
    let fieldWarnings: [FieldWarning]
    do {
      (object, fieldWarnings) = try validate(decoded)
    } catch {
      throw loc.error(
        object: rawLabel, field: error.field, error.message,
        line: Self.line(of: error.field, in: node))
    }
    let objectLabel = label(object)
    for w in fieldWarnings {
      warnings.append(
        loc.warning(
          object: objectLabel, field: w.field, w.message, line: Self.line(of: w.field, in: node)))
    }
    if let first = seen[objectLabel] {
      throw loc.error(
        object: objectLabel, field: nil, "duplicate object (first defined in \(first))",
        line: node.line)
    }
    seen[objectLabel] = loc.description
    store(&self, object)
  }

  // MARK: Messages

  static func syntaxMessage(_ error: any Error) -> String {
    guard let y = error as? YamlError else { return "syntax error: \(error)" }
    switch y {
    case .scanner(let context, let problem, let mark, _),
      .parser(let context, let problem, let mark, _),
      .composer(let context, let problem, let mark, _):
      var m = "syntax error at line \(mark.line), column \(mark.column): \(problem)"
      if let context {
        m += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
      }
      return m
    case .reader(let problem, _, _, _):
      return "syntax error: \(problem)"
    case .duplicatedKeysInMapping(let duplicates, let context):
      let keys = duplicates.map { Normalize.quote($0) }.joined(separator: ", ")
      return "syntax error at line \(context.mark.line): duplicate key \(keys) in a mapping"
    default:
      return "syntax error: \(y)"
    }
  }

  static func isIndex(_ key: any CodingKey) -> Bool {
    key.intValue != nil && key.stringValue.hasPrefix("Index ")
  }

  /// `spec.ports[1].port`; keys that are not plain identifiers are written `["key"]`.
  static func path(_ keys: [any CodingKey]) -> String {
    var out = ""
    for key in keys {
      if isIndex(key), let i = key.intValue {
        out += "[\(i)]"
        continue
      }
      let k = key.stringValue
      let plain =
        !k.isEmpty
        && k.unicodeScalars.allSatisfy {
          ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9")
            || $0 == "_" || $0 == "-"
        }
      if plain {
        out += out.isEmpty ? k : "." + k
      } else {
        out += "[\(Normalize.quote(k))]"
      }
    }
    return out
  }

  private enum PathStep {
    case key(String)
    case index(Int)
  }

  /// Parses a path written by ``path(_:)`` or by ``Validation``.
  private static func steps(_ path: String) -> [PathStep] {
    var steps: [PathStep] = []
    var chars = Array(path.unicodeScalars)[...]
    var current = ""
    func flush() {
      if !current.isEmpty { steps.append(.key(current)) }
      current = ""
    }
    while let c = chars.popFirst() {
      switch c {
      case ".":
        flush()
      case "[":
        flush()
        if chars.first == "\"" {
          chars.removeFirst()
          var key = ""
          while let k = chars.popFirst(), k != "\"" {
            if k == "\\", let next = chars.popFirst() {
              key.unicodeScalars.append(next)
            } else {
              key.unicodeScalars.append(k)
            }
          }
          steps.append(.key(key))
          if chars.first == "]" { chars.removeFirst() }
        } else {
          var digits = ""
          while let d = chars.popFirst(), d != "]" { digits.unicodeScalars.append(d) }
          if let i = Int(digits) { steps.append(.index(i)) }
        }
      default:
        current.unicodeScalars.append(c)
      }
    }
    flush()
    return steps
  }

  /// The line of the deepest node on `field`'s path that exists in the document.
  static func line(of field: String, in root: Tree) -> Int? {
    var node = root
    for step in steps(field) {
      switch step {
      case .key(let k):
        guard case .mapping(let m) = node, let next = m.values[k] else { return node.line }
        node = next
      case .index(let i):
        guard case .sequence(let s, _) = node, i >= 0, i < s.count else { return node.line }
        node = s[i]
      }
    }
    return node.line
  }

  static func node(at keys: [any CodingKey], in root: Tree) -> Tree? {
    var node = root
    for key in keys {
      if isIndex(key), let i = key.intValue {
        guard case .sequence(let s, _) = node, i >= 0, i < s.count else { return nil }
        node = s[i]
      } else {
        guard case .mapping(let m) = node, let next = m.values[key.stringValue] else { return nil }
        node = next
      }
    }
    return node
  }

  static func typeName(_ type: Any.Type) -> String {
    let id = ObjectIdentifier(type)
    let integers: [Any.Type] = [
      Int.self, Int8.self, Int16.self, Int32.self, Int64.self, UInt.self, UInt8.self, UInt16.self,
      UInt32.self, UInt64.self,
    ]
    if integers.contains(where: { ObjectIdentifier($0) == id }) { return "an integer" }
    switch id {
    case ObjectIdentifier(String.self): return "a string"
    case ObjectIdentifier(Bool.self): return "a boolean (true or false)"
    case ObjectIdentifier(Double.self), ObjectIdentifier(Float.self): return "a number"
    case ObjectIdentifier([String: Any].self): return "an object"
    case ObjectIdentifier([Any].self): return "a list"
    default: return "\(type)"
    }
  }

  /// A decoding error as a field path and a message.
  static func translate(_ error: DecodingError, root: Tree) -> (String, String) {
    switch error {
    case .typeMismatch(let type, let ctx):
      let got = node(at: ctx.codingPath, in: root).map { ", got \($0.summary)" } ?? ""
      return (path(ctx.codingPath), "expected \(typeName(type))\(got)")
    case .valueNotFound(_, let ctx):
      return (path(ctx.codingPath), "must not be null")
    case .keyNotFound(let key, let ctx):
      return (path(ctx.codingPath + [key]), "required field is missing")
    case .dataCorrupted(let ctx):
      return (path(ctx.codingPath), ctx.debugDescription)
    @unknown default:
      return ("", "\(error)")
    }
  }
}
