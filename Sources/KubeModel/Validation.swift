import IPAddr

/// A fatal problem in one object: the field (a path such as `spec.ports[1].port`) and what is wrong.
public struct ValidationError: Error, Sendable, Equatable, CustomStringConvertible {
  /// Path of the offending field, relative to the object (`spec.ports[1].port`).
  public var field: String
  /// What is wrong, e.g. `must be between 1 and 65535 (got 70000)`.
  public var message: String

  public init(field: String, message: String) {
    self.field = field
    self.message = message
  }

  /// `field: message`.
  public var description: String { field.isEmpty ? message : "\(field): \(message)" }
}

/// A non-fatal finding at a field of an object (something normalized or skipped).
struct FieldWarning: Sendable, Equatable, CustomStringConvertible {
  var field: String
  var message: String
  var description: String { field.isEmpty ? message : "\(field): \(message)" }
}

/// Validation and normalization of the objects nftproxy reads, the same whether they come from
/// manifest files or from the API server.
///
/// Fatal problems throw a ``ValidationError``. Values that Kubernetes would accept in a legacy
/// form (leading-zero IPv4 parts, lower-case protocols, `externalTrafficPolicy: Global`) are
/// normalized; invalid endpoint addresses and node CIDRs/addresses are dropped. Each of those
/// yields a warning `field: message`. Addresses and CIDRs are rewritten in canonical text form
/// (IPv6 compressed and lower case, CIDRs masked), so later stages can compare strings.
public enum Validation {
  /// Validates and normalizes a `v1/Service`; returns it with its warnings (`field: message`).
  public static func validate(_ s: Service) throws(ValidationError) -> (Service, [String]) {
    let (out, warnings) = try validateDetailed(s)
    return (out, warnings.map(\.description))
  }

  /// Validates and normalizes a `discovery.k8s.io/v1/EndpointSlice`; returns it with its warnings.
  public static func validate(_ s: EndpointSlice) throws(ValidationError) -> (
    EndpointSlice, [String]
  ) {
    let (out, warnings) = try validateDetailed(s)
    return (out, warnings.map(\.description))
  }

  /// Validates and normalizes a `v1/Node`; returns it with its warnings.
  public static func validate(_ n: Node) throws(ValidationError) -> (Node, [String]) {
    let (out, warnings) = try validateDetailed(n)
    return (out, warnings.map(\.description))
  }

  static func validateDetailed(_ s: Service) throws(ValidationError) -> (Service, [FieldWarning]) {
    var c = Checker()
    let out = try c.service(s)
    return (out, c.warnings)
  }

  static func validateDetailed(_ s: EndpointSlice) throws(ValidationError) -> (
    EndpointSlice, [FieldWarning]
  ) {
    var c = Checker()
    let out = try c.endpointSlice(s)
    return (out, c.warnings)
  }

  static func validateDetailed(_ n: Node) throws(ValidationError) -> (Node, [FieldWarning]) {
    var c = Checker()
    let out = try c.node(n)
    return (out, c.warnings)
  }
}

/// Collects warnings while checking one object.
private struct Checker {
  var warnings: [FieldWarning] = []

  mutating func warn(_ field: String, _ message: String) {
    warnings.append(FieldWarning(field: field, message: message))
  }

  func fail(_ field: String, _ message: String) -> ValidationError {
    ValidationError(field: field, message: message)
  }

  // MARK: Shared checks

  func range(_ value: Int, _ bounds: ClosedRange<Int>, _ field: String) throws(ValidationError) {
    guard bounds.contains(value) else {
      throw fail(
        field, "must be between \(bounds.lowerBound) and \(bounds.upperBound) (got \(value))")
    }
  }

  func oneOf(_ value: String, _ allowed: [String], _ field: String) throws(ValidationError) {
    guard allowed.contains(value) else {
      throw fail(
        field,
        "unsupported value \(Normalize.quote(value)): must be one of "
          + allowed.joined(separator: ", "))
    }
  }

  /// A required IP address, normalized.
  mutating func ip(_ text: String, _ field: String) throws(ValidationError) -> Normalize.ParsedIP {
    switch Normalize.ip(text) {
    case .failure(let p): throw fail(field, p.message)
    case .success(let parsed):
      if parsed.hadLeadingZeros { warn(field, Normalize.leadingZerosWarning(text, parsed.text)) }
      return parsed
    }
  }

  /// A required CIDR, normalized.
  mutating func cidr(_ text: String, _ field: String) throws(ValidationError) -> String {
    switch Normalize.cidr(text) {
    case .failure(let p): throw fail(field, p.message)
    case .success(let parsed):
      if parsed.hadLeadingZeros { warn(field, Normalize.leadingZerosWarning(text, parsed.text)) }
      return parsed.text
    }
  }

  /// An optional CIDR: invalid values are dropped with a warning.
  mutating func optionalCIDR(_ text: String, _ field: String) -> String? {
    switch Normalize.cidr(text) {
    case .failure(let p):
      warn(field, p.message + "; skipped")
      return nil
    case .success(let parsed):
      if parsed.hadLeadingZeros { warn(field, Normalize.leadingZerosWarning(text, parsed.text)) }
      return parsed.text
    }
  }

  /// `TCP`, `UDP` or `SCTP`; missing means TCP; lower or mixed case is accepted and upper-cased.
  mutating func proto(_ value: String?, _ field: String) throws(ValidationError) -> String {
    guard let value, !value.isEmpty else { return "TCP" }
    let upper = value.uppercased()
    try oneOf(upper, ["TCP", "UDP", "SCTP"], field)
    if upper != value {
      warn(field, "normalized \(Normalize.quote(value)) to \(Normalize.quote(upper))")
    }
    return upper
  }

  /// `metadata.name` (required) and, for namespaced kinds, `metadata.namespace` (default `default`).
  mutating func metadata(_ m: inout ObjectMeta, namespaced: Bool, nameIsLabel: Bool)
    throws(ValidationError)
  {
    guard let name = m.name, !name.isEmpty else {
      throw fail("metadata.name", "required field is missing")
    }
    if nameIsLabel {
      guard Normalize.isDNSLabel(name) else {
        throw fail(
          "metadata.name",
          "invalid name \(Normalize.quote(name)): must be a lower-case RFC 1123 label "
            + "(letters, digits and '-', at most 63 characters)")
      }
    } else {
      guard Normalize.isDNSSubdomain(name) else {
        throw fail(
          "metadata.name",
          "invalid name \(Normalize.quote(name)): must be a lower-case RFC 1123 subdomain "
            + "(letters, digits, '-' and '.', at most 253 characters)")
      }
    }
    guard namespaced else { return }
    let ns = m.namespace ?? ""
    if ns.isEmpty {
      m.namespace = "default"
    } else if !Normalize.isDNSLabel(ns) {
      throw fail(
        "metadata.namespace",
        "invalid namespace \(Normalize.quote(ns)): must be a lower-case RFC 1123 label "
          + "(letters, digits and '-', at most 63 characters)")
    }
  }

  /// A port name: a lower-case RFC 1123 label.
  func portName(_ name: String, _ field: String) throws(ValidationError) {
    guard Normalize.isDNSLabel(name) else {
      throw fail(
        field,
        "invalid port name \(Normalize.quote(name)): must be a lower-case RFC 1123 label "
          + "(letters, digits and '-', at most 63 characters)")
    }
  }

  // MARK: Service

  mutating func service(_ input: Service) throws(ValidationError) -> Service {
    var s = input
    try metadata(&s.metadata, namespaced: true, nameIsLabel: true)
    var spec = s.spec

    let type = (spec.type ?? "").isEmpty ? "ClusterIP" : spec.type!
    try oneOf(type, ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"], "spec.type")
    spec.type = type
    let external = type == "NodePort" || type == "LoadBalancer"

    try clusterIPs(&spec)

    for (i, family) in (spec.ipFamilies ?? []).enumerated() {
      let field = "spec.ipFamilies[\(i)]"
      try oneOf(family, ["IPv4", "IPv6"], field)
      if let j = spec.ipFamilies![..<i].firstIndex(of: family) {
        throw fail(field, "duplicate value \(Normalize.quote(family)) (also spec.ipFamilies[\(j)])")
      }
    }
    if (spec.ipFamilies ?? []).count > 2 {
      throw fail("spec.ipFamilies", "may hold at most two families (got \(spec.ipFamilies!.count))")
    }
    let allocated = (spec.clusterIPs ?? []).filter { $0 != "None" }
    if !allocated.isEmpty {
      let families = allocated.map { IPAddress($0)!.family.rawValue }
      if let given = spec.ipFamilies, !given.isEmpty {
        for (i, ip) in allocated.enumerated() where i < given.count && given[i] != families[i] {
          throw fail(
            "spec.ipFamilies[\(i)]",
            "\(Normalize.quote(given[i])) does not match spec.clusterIPs[\(i)] "
              + "(\(Normalize.quote(ip)) is \(families[i]))")
        }
        if given.count < allocated.count {
          throw fail(
            "spec.ipFamilies",
            "lists \(given.count) famil\(given.count == 1 ? "y" : "ies") but spec.clusterIPs "
              + "holds \(allocated.count) addresses")
        }
      } else {
        spec.ipFamilies = families
      }
    }

    spec.ports = try ports(spec.ports, external: external, type: type)

    if let ips = spec.externalIPs {
      var out: [String] = []
      // As kube-proxy, an invalid external IP is skipped (with a warning) rather than failing
      // the whole Service: the other frontends keep working.
      for (i, text) in ips.enumerated() {
        let field = "spec.externalIPs[\(i)]"
        switch Normalize.ip(text) {
        case .failure(let p): warn(field, p.message + "; address skipped")
        case .success(let parsed):
          if parsed.hadLeadingZeros { warn(field, Normalize.leadingZerosWarning(text, parsed.text)) }
          out.append(parsed.text)
        }
      }
      spec.externalIPs = out
    }

    if let lbIP = spec.loadBalancerIP {
      spec.loadBalancerIP = try lbIP.isEmpty ? nil : ip(lbIP, "spec.loadBalancerIP").text
    }

    if let ranges = spec.loadBalancerSourceRanges {
      var out: [String] = []
      for (i, text) in ranges.enumerated() {
        let trimmed = text.trimmingSpaces
        out.append(try cidr(trimmed, "spec.loadBalancerSourceRanges[\(i)]"))
      }
      spec.loadBalancerSourceRanges = out
    }

    if let etp = spec.externalTrafficPolicy {
      if etp.isEmpty {
        spec.externalTrafficPolicy = nil
      } else if etp == "Global" {
        spec.externalTrafficPolicy = "Cluster"
      } else {
        try oneOf(etp, ["Cluster", "Local"], "spec.externalTrafficPolicy")
      }
    }
    if let itp = spec.internalTrafficPolicy {
      if itp.isEmpty {
        spec.internalTrafficPolicy = nil
      } else {
        try oneOf(itp, ["Cluster", "Local"], "spec.internalTrafficPolicy")
      }
    }

    if let hc = spec.healthCheckNodePort {
      try range(hc, 0...65535, "spec.healthCheckNodePort")
      if hc == 0 { spec.healthCheckNodePort = nil }
    }

    if let affinity = spec.sessionAffinity {
      if affinity.isEmpty {
        spec.sessionAffinity = nil
      } else {
        try oneOf(affinity, ["None", "ClientIP"], "spec.sessionAffinity")
      }
    }
    if spec.sessionAffinity == "ClientIP" {
      let timeout = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800
      try range(timeout, 1...86400, "spec.sessionAffinityConfig.clientIP.timeoutSeconds")
      spec.sessionAffinityConfig = SessionAffinityConfig(
        clientIP: ClientIPConfig(timeoutSeconds: timeout))
    }

    s.spec = spec

    if var ingress = s.status?.loadBalancer?.ingress {
      for i in ingress.indices {
        let field = "status.loadBalancer.ingress[\(i)]"
        if let text = ingress[i].ip {
          ingress[i].ip = try text.isEmpty ? nil : ip(text, field + ".ip").text
        }
        if let mode = ingress[i].ipMode {
          if mode.isEmpty {
            ingress[i].ipMode = nil
          } else {
            try oneOf(mode, ["VIP", "Proxy"], field + ".ipMode")
          }
        }
      }
      s.status!.loadBalancer!.ingress = ingress
    }
    return s
  }

  /// `spec.clusterIP` and `spec.clusterIPs`: valid addresses, `None` or empty; kept consistent
  /// (`clusterIPs[0] == clusterIP`), at most one address per family.
  mutating func clusterIPs(_ spec: inout ServiceSpec) throws(ValidationError) {
    var primary: String? = nil
    if let text = spec.clusterIP, !text.isEmpty {
      primary = try text == "None" ? text : ip(text, "spec.clusterIP").text
    }
    var list: [String] = []
    let given = spec.clusterIPs ?? []
    for (i, text) in given.enumerated() {
      let field = "spec.clusterIPs[\(i)]"
      if text == "None" {
        if given.count > 1 {
          throw fail(field, "\"None\" must be the only value")
        }
        list.append(text)
      } else if text.isEmpty {
        throw fail(field, "must be an IP address or \"None\" (got an empty string)")
      } else {
        list.append(try ip(text, field).text)
      }
    }
    if list.count > 2 {
      throw fail("spec.clusterIPs", "may hold at most two addresses (got \(list.count))")
    }
    if list.count == 2, IPAddress(list[0])!.family == IPAddress(list[1])!.family {
      throw fail(
        "spec.clusterIPs[1]",
        "must be of a different IP family than spec.clusterIPs[0] "
          + "(\(Normalize.quote(list[0])) and \(Normalize.quote(list[1])))")
    }
    if let primary, let first = list.first, primary != first {
      throw fail(
        "spec.clusterIPs[0]",
        "must match spec.clusterIP (\(Normalize.quote(primary))), got \(Normalize.quote(first))")
    }
    if list.isEmpty, let primary { list = [primary] }
    spec.clusterIP = list.first ?? (spec.clusterIP == nil ? nil : "")
    spec.clusterIPs = list.isEmpty ? (spec.clusterIPs == nil ? nil : []) : list
  }

  mutating func ports(_ input: [ServicePort]?, external: Bool, type: String)
    throws(ValidationError) -> [ServicePort]?
  {
    guard var ports = input else { return nil }
    var names: [String: Int] = [:]
    var portProtos: [String: Int] = [:]
    var nodePorts: [String: Int] = [:]
    for i in ports.indices {
      let field = "spec.ports[\(i)]"
      var p = ports[i]
      try range(p.port, 1...65535, field + ".port")
      p.protocol = try proto(p.protocol, field + ".protocol")

      let name = p.name ?? ""
      if name.isEmpty {
        if ports.count > 1 {
          throw fail(field + ".name", "required when the Service has more than one port")
        }
        p.name = nil
      } else {
        try portName(name, field + ".name")
        if let j = names[name] {
          throw fail(
            field + ".name", "duplicate port name \(Normalize.quote(name)) (also spec.ports[\(j)])")
        }
        names[name] = i
      }

      let key = "\(p.port)/\(p.protocol!)"
      if let j = portProtos[key] {
        throw fail(field, "duplicate port \(key) (also spec.ports[\(j)])")
      }
      portProtos[key] = i

      if let np = p.nodePort {
        try range(np, 0...65535, field + ".nodePort")
        if np == 0 {
          p.nodePort = nil
        } else if !external {
          warn(
            field + ".nodePort",
            "ignored: only meaningful for type NodePort or LoadBalancer (type is \(type))")
          p.nodePort = nil
        } else {
          let npKey = "\(np)/\(p.protocol!)"
          if let j = nodePorts[npKey] {
            throw fail(
              field + ".nodePort", "duplicate node port \(npKey) (also spec.ports[\(j)].nodePort)")
          }
          nodePorts[npKey] = i
        }
      }

      switch p.targetPort {
      case nil, .int(0), .string(""):
        p.targetPort = .int(p.port)
      case .int(let n):
        try range(n, 1...65535, field + ".targetPort")
      case .string(let s):
        guard Normalize.isIANAServiceName(s) else {
          throw fail(
            field + ".targetPort",
            "invalid port name \(Normalize.quote(s)): must be a number between 1 and 65535 "
              + "or an IANA service name (at most 15 lower-case letters, digits and '-', "
              + "with at least one letter)")
        }
      }
      ports[i] = p
    }
    return ports
  }

  // MARK: EndpointSlice

  mutating func endpointSlice(_ input: EndpointSlice) throws(ValidationError) -> EndpointSlice {
    var s = input
    try metadata(&s.metadata, namespaced: true, nameIsLabel: false)
    try oneOf(s.addressType, ["IPv4", "IPv6", "FQDN"], "addressType")
    if (s.metadata.labels?[EndpointSlice.serviceNameLabel] ?? "").isEmpty {
      warn(
        "metadata.labels[\(Normalize.quote(EndpointSlice.serviceNameLabel))]",
        "missing: the slice cannot be matched to a Service")
    }
    let family: IPAddress.Family? =
      switch s.addressType {
      case "IPv4": .ipv4
      case "IPv6": .ipv6
      default: nil
      }

    if var ports = s.ports {
      var names: [String: Int] = [:]
      for i in ports.indices {
        let field = "ports[\(i)]"
        if let port = ports[i].port { try range(port, 1...65535, field + ".port") }
        ports[i].protocol = try proto(ports[i].protocol, field + ".protocol")
        let name = ports[i].name ?? ""
        if !name.isEmpty {
          try portName(name, field + ".name")
        }
        let key = name + "/" + ports[i].protocol!
        if let j = names[key] {
          throw fail(
            field + ".name",
            "duplicate port name \(Normalize.quote(name)) for \(ports[i].protocol!) "
              + "(also ports[\(j)])")
        }
        names[key] = i
      }
      s.ports = ports
    }

    if let endpoints = s.endpoints, let family {
      var kept: [Endpoint] = []
      for (i, ep) in endpoints.enumerated() {
        var ep = ep
        var addresses: [String] = []
        for (j, text) in ep.addresses.enumerated() {
          let field = "endpoints[\(i)].addresses[\(j)]"
          switch Normalize.ip(text) {
          case .failure(let p):
            warn(field, p.message + "; address skipped")
          case .success(let parsed) where parsed.address.family != family:
            warn(
              field,
              "\(Normalize.quote(text)) is not an \(family.rawValue) address "
                + "(addressType is \(s.addressType)); address skipped")
          case .success(let parsed):
            if parsed.hadLeadingZeros {
              warn(field, Normalize.leadingZerosWarning(text, parsed.text))
            }
            addresses.append(parsed.text)
          }
        }
        if addresses.isEmpty {
          warn("endpoints[\(i)]", "no valid addresses; endpoint skipped")
          continue
        }
        ep.addresses = addresses
        kept.append(ep)
      }
      s.endpoints = kept
    }
    return s
  }

  // MARK: Node

  mutating func node(_ input: Node) throws(ValidationError) -> Node {
    var n = input
    try metadata(&n.metadata, namespaced: false, nameIsLabel: false)

    if var spec = n.spec {
      if let text = spec.podCIDR {
        spec.podCIDR = text.isEmpty ? nil : optionalCIDR(text, "spec.podCIDR")
      }
      if let list = spec.podCIDRs {
        var out: [String] = []
        for (i, text) in list.enumerated() {
          if let c = optionalCIDR(text, "spec.podCIDRs[\(i)]") { out.append(c) }
        }
        spec.podCIDRs = out
      }
      if (spec.podCIDRs ?? []).isEmpty, let primary = spec.podCIDR {
        spec.podCIDRs = [primary]
      } else if spec.podCIDR == nil, let first = spec.podCIDRs?.first {
        spec.podCIDR = first
      }
      n.spec = spec
    }

    if let addresses = n.status?.addresses {
      var out: [NodeAddress] = []
      for (i, a) in addresses.enumerated() {
        guard a.type == "InternalIP" || a.type == "ExternalIP" else {
          out.append(a)
          continue
        }
        let field = "status.addresses[\(i)].address"
        switch Normalize.ip(a.address) {
        case .failure(let p):
          warn(field, p.message + "; address skipped")
        case .success(let parsed):
          if parsed.hadLeadingZeros {
            warn(field, Normalize.leadingZerosWarning(a.address, parsed.text))
          }
          out.append(NodeAddress(type: a.type, address: parsed.text))
        }
      }
      n.status!.addresses = out
    }
    return n
  }
}

extension String {
  /// The string without leading and trailing spaces, tabs and line breaks.
  fileprivate var trimmingSpaces: String {
    let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
    guard let start = firstIndex(where: { !isSpace($0) }) else { return "" }
    let end = lastIndex(where: { !isSpace($0) })!
    return String(self[start...end])
  }
}
