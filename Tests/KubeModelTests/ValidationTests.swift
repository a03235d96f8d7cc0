import KubeModel
import Testing

private typealias T = TestSupport

/// One invalid Service: its spec (and status), the field and the message expected.
struct ServiceCase: Sendable, CustomTestStringConvertible {
  var spec: String
  var status: String? = nil
  var field: String
  var message: String
  var testDescription: String { field + ": " + message }
}

private let serviceCases: [ServiceCase] = [
  ServiceCase(
    spec: "  type: Magic", field: "spec.type",
    message:
      "unsupported value \"Magic\": must be one of ClusterIP, NodePort, LoadBalancer, ExternalName"),
  ServiceCase(
    spec: "  clusterIP: 10.96.0.256", field: "spec.clusterIP",
    message: "invalid IP address \"10.96.0.256\""),
  ServiceCase(
    spec: "  clusterIP: none", field: "spec.clusterIP", message: "invalid IP address \"none\""),
  ServiceCase(
    spec: "  clusterIPs: [10.96.0.1, bogus]", field: "spec.clusterIPs[1]",
    message: "invalid IP address \"bogus\""),
  ServiceCase(
    spec: "  clusterIPs: [\"None\", 10.96.0.1]", field: "spec.clusterIPs[0]",
    message: "\"None\" must be the only value"),
  ServiceCase(
    spec: "  clusterIPs: [\"\"]", field: "spec.clusterIPs[0]",
    message: "must be an IP address or \"None\" (got an empty string)"),
  ServiceCase(
    spec: "  clusterIP: 10.96.0.1\n  clusterIPs: [10.96.0.2]", field: "spec.clusterIPs[0]",
    message: "must match spec.clusterIP (\"10.96.0.1\"), got \"10.96.0.2\""),
  ServiceCase(
    spec: "  clusterIPs: [10.96.0.1, 10.96.0.2]", field: "spec.clusterIPs[1]",
    message:
      "must be of a different IP family than spec.clusterIPs[0] (\"10.96.0.1\" and \"10.96.0.2\")"),
  ServiceCase(
    spec: "  clusterIPs: [10.96.0.1, fd00::1, 10.96.0.3]", field: "spec.clusterIPs",
    message: "may hold at most two addresses (got 3)"),
  ServiceCase(
    spec: "  clusterIP: ::ffff:10.0.0.1", field: "spec.clusterIP",
    message: "invalid IP address \"::ffff:10.0.0.1\": IPv4-mapped IPv6 addresses are not supported"),
  ServiceCase(
    spec: "  clusterIPs: [10.96.0.1]\n  ipFamilies: [IPv6]", field: "spec.ipFamilies[0]",
    message: "\"IPv6\" does not match spec.clusterIPs[0] (\"10.96.0.1\" is IPv4)"),
  ServiceCase(
    spec: "  clusterIPs: [10.96.0.1, fd00::1]\n  ipFamilies: [IPv4]", field: "spec.ipFamilies",
    message: "lists 1 family but spec.clusterIPs holds 2 addresses"),
  ServiceCase(
    spec: "  ipFamilies: [IPv5]", field: "spec.ipFamilies[0]",
    message: "unsupported value \"IPv5\": must be one of IPv4, IPv6"),
  ServiceCase(
    spec: "  ipFamilies: [IPv4, IPv4]", field: "spec.ipFamilies[1]",
    message: "duplicate value \"IPv4\" (also spec.ipFamilies[0])"),
  ServiceCase(
    spec: "  ports:\n  - port: 0", field: "spec.ports[0].port",
    message: "must be between 1 and 65535 (got 0)"),
  ServiceCase(
    spec: "  ports:\n  - {name: a, port: 80}\n  - {name: b, port: 70000}",
    field: "spec.ports[1].port",
    message: "must be between 1 and 65535 (got 70000)"),
  ServiceCase(
    spec: "  ports:\n  - {port: 80, protocol: ICMP}", field: "spec.ports[0].protocol",
    message: "unsupported value \"ICMP\": must be one of TCP, UDP, SCTP"),
  ServiceCase(
    spec: "  type: NodePort\n  ports:\n  - {port: 80, nodePort: 65536}",
    field: "spec.ports[0].nodePort",
    message: "must be between 0 and 65535 (got 65536)"),
  ServiceCase(
    spec: "  type: NodePort\n  ports:\n  - {port: 80, nodePort: -1}",
    field: "spec.ports[0].nodePort",
    message: "must be between 0 and 65535 (got -1)"),
  ServiceCase(
    spec: "  type: NodePort\n  ports:\n  - {name: a, port: 80, nodePort: 30080}\n"
      + "  - {name: b, port: 81, nodePort: 30080}",
    field: "spec.ports[1].nodePort",
    message: "duplicate node port 30080/TCP (also spec.ports[0].nodePort)"),
  ServiceCase(
    spec: "  ports:\n  - {port: 80, targetPort: 65536}", field: "spec.ports[0].targetPort",
    message: "must be between 1 and 65535 (got 65536)"),
  ServiceCase(
    spec: "  ports:\n  - {port: 80, targetPort: \"8080\"}", field: "spec.ports[0].targetPort",
    message:
      "invalid port name \"8080\": must be a number between 1 and 65535 or an IANA service name "
      + "(at most 15 lower-case letters, digits and '-', with at least one letter)"),
  ServiceCase(
    spec: "  ports:\n  - {name: a, port: 80}\n  - {port: 81}", field: "spec.ports[1].name",
    message: "required when the Service has more than one port"),
  ServiceCase(
    spec: "  ports:\n  - {name: a, port: 80}\n  - {name: a, port: 81}", field: "spec.ports[1].name",
    message: "duplicate port name \"a\" (also spec.ports[0])"),
  ServiceCase(
    spec: "  ports:\n  - {name: Http, port: 80}", field: "spec.ports[0].name",
    message:
      "invalid port name \"Http\": must be a lower-case RFC 1123 label (letters, digits and '-', "
      + "at most 63 characters)"),
  ServiceCase(
    spec: "  ports:\n  - {name: a, port: 80}\n  - {name: b, port: 80, protocol: tcp}",
    field: "spec.ports[1]", message: "duplicate port 80/TCP (also spec.ports[0])"),
  ServiceCase(
    spec: "  loadBalancerIP: 1.2.3", field: "spec.loadBalancerIP",
    message: "invalid IP address \"1.2.3\""),
  ServiceCase(
    spec: "  loadBalancerSourceRanges: [10.0.0.0/8, 10.0.0.0/33]",
    field: "spec.loadBalancerSourceRanges[1]", message: "invalid CIDR \"10.0.0.0/33\""),
  ServiceCase(
    spec: "  loadBalancerSourceRanges: [192.0.2.1]", field: "spec.loadBalancerSourceRanges[0]",
    message: "invalid CIDR \"192.0.2.1\""),
  ServiceCase(
    spec: "  externalTrafficPolicy: local", field: "spec.externalTrafficPolicy",
    message: "unsupported value \"local\": must be one of Cluster, Local"),
  ServiceCase(
    spec: "  internalTrafficPolicy: Global", field: "spec.internalTrafficPolicy",
    message: "unsupported value \"Global\": must be one of Cluster, Local"),
  ServiceCase(
    spec: "  sessionAffinity: Cookie", field: "spec.sessionAffinity",
    message: "unsupported value \"Cookie\": must be one of None, ClientIP"),
  ServiceCase(
    spec: "  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}",
    field: "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
    message: "must be between 1 and 86400 (got 0)"),
  ServiceCase(
    spec:
      "  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 86401}}",
    field: "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
    message: "must be between 1 and 86400 (got 86401)"),
  ServiceCase(
    spec: "  type: LoadBalancer\n  healthCheckNodePort: 70000", field: "spec.healthCheckNodePort",
    message: "must be between 0 and 65535 (got 70000)"),
  ServiceCase(
    spec: "  type: LoadBalancer", status: "  loadBalancer:\n    ingress:\n    - ip: 203.0.113.300",
    field: "status.loadBalancer.ingress[0].ip", message: "invalid IP address \"203.0.113.300\""),
  ServiceCase(
    spec: "  type: LoadBalancer",
    status:
      "  loadBalancer:\n    ingress:\n    - {hostname: lb.example.com}\n    - {ip: 203.0.113.1, ipMode: Tunnel}",
    field: "status.loadBalancer.ingress[1].ipMode",
    message: "unsupported value \"Tunnel\": must be one of VIP, Proxy"),
]

@Suite("Object validation")
struct ValidationTests {
  @Test(arguments: serviceCases)
  func serviceErrors(_ c: ServiceCase) throws {
    let text = T.service(spec: c.spec, status: c.status)
    let e = try #require(T.error(text, file: "v.yaml"))
    #expect(e.field == c.field)
    #expect(e.message == c.message)
    #expect(e.documentIndex == 1)
    #expect(e.object == "Service default/web")
    #expect(
      e.description.hasPrefix("v.yaml: document 1: Service default/web: \(c.field): \(c.message)"))
    #expect(e.line != nil)
  }

  @Test func metadataErrors() throws {
    let badName = try #require(T.error(T.service("Web")))
    #expect(badName.field == "metadata.name")
    #expect(badName.message.hasPrefix("invalid name \"Web\": must be a lower-case RFC 1123 label"))
    let badNS = try #require(T.error(T.service(namespace: "a.b")))
    #expect(badNS.field == "metadata.namespace")
    #expect(badNS.object == "Service a.b/web")
  }

  @Test func endpointSliceErrors() throws {
    let type = try #require(T.error(T.slice(addressType: "IPv5"), file: "e.yaml"))
    #expect(
      type.description
        == "e.yaml: document 1: EndpointSlice default/web-abc: addressType: unsupported value \"IPv5\": must be one of IPv4, IPv6, FQDN (line 7)"
    )
    let port = try #require(
      T.error(T.slice(body: "ports:\n- {name: a, port: 80}\n- {name: b, port: 0}")))
    #expect(port.field == "ports[1].port")
    #expect(port.message == "must be between 1 and 65535 (got 0)")
    let proto = try #require(T.error(T.slice(body: "ports:\n- {port: 80, protocol: GRE}")))
    #expect(proto.field == "ports[0].protocol")
    let dup = try #require(
      T.error(T.slice(body: "ports:\n- {name: a, port: 80}\n- {name: a, port: 81}")))
    #expect(dup.field == "ports[1].name")
    #expect(dup.message == "duplicate port name \"a\" for TCP (also ports[0])")
  }

  @Test func serviceNormalization() throws {
    let text = T.service(
      spec: """
          type: LoadBalancer
          clusterIP: FD00:0:0:0::0A
          externalIPs: [2001:DB8::1, 192.0.2.1]
          loadBalancerSourceRanges: [" 10.1.2.3/16 ", "2001:db8::/32"]
          externalTrafficPolicy: Global
          sessionAffinity: ClientIP
          ports:
          - {name: dns, port: 53, protocol: udp, nodePort: 0}
          - {name: web, port: 80, targetPort: 0, nodePort: 30080}
          - {name: alt, port: 81, targetPort: http, protocol: SCTP}
        """,
      status: """
          loadBalancer:
            ingress:
            - {ip: "2001:DB8::AA", ipMode: Proxy}
            - {hostname: lb.example.com}
        """)
    let r = try T.load(text, file: "n.yaml")
    let svc = try #require(r.state.services.first)
    #expect(svc.metadata.namespace == "default")
    #expect(svc.spec.clusterIP == "fd00::a")
    #expect(svc.spec.clusterIPs == ["fd00::a"])
    #expect(svc.spec.ipFamilies == ["IPv6"])
    #expect(svc.spec.externalIPs == ["2001:db8::1", "192.0.2.1"])
    #expect(svc.spec.loadBalancerSourceRanges == ["10.1.0.0/16", "2001:db8::/32"])
    #expect(svc.spec.externalTrafficPolicy == "Cluster")
    #expect(svc.spec.sessionAffinityConfig?.clientIP?.timeoutSeconds == 10800)
    let ports = try #require(svc.spec.ports)
    #expect(ports.map(\.protocol) == ["UDP", "TCP", "SCTP"])
    #expect(ports.map(\.targetPort) == [.int(53), .int(80), .string("http")])
    #expect(ports.map(\.nodePort) == [nil, 30080, nil])
    #expect(svc.status?.loadBalancer?.ingress?.first?.ip == "2001:db8::aa")
    #expect(
      r.warnings == [
        "n.yaml: document 1: Service default/web: spec.ports[0].protocol: normalized \"udp\" to \"UDP\" (line 13)"
      ])
  }

  @Test func nodePortOnClusterIPIsIgnoredWithWarning() throws {
    let r = try T.load(T.service(spec: "  ports:\n  - {port: 80, nodePort: 30080}"))
    #expect(r.state.services.first?.spec.ports?.first?.nodePort == nil)
    #expect(r.warnings.count == 1)
    #expect(
      r.warnings.first?.contains(
        "Service default/web: spec.ports[0].nodePort: ignored: only meaningful for type NodePort or LoadBalancer (type is ClusterIP)"
      ) == true)
  }

  @Test func headlessAndDualStack() throws {
    let headless = try T.load(T.service(spec: "  clusterIP: None\n  ports:\n  - port: 80"))
    #expect(headless.state.services.first?.spec.clusterIPs == ["None"])
    #expect(headless.state.services.first?.spec.ipFamilies == nil)
    let dual = try T.load(
      T.service(spec: "  clusterIPs: [10.96.0.1, \"fd00::1\"]\n  ipFamilies: [IPv4, IPv6]"))
    #expect(dual.state.services.first?.spec.clusterIP == "10.96.0.1")
    #expect(dual.state.services.first?.spec.clusterIPs == ["10.96.0.1", "fd00::1"])
  }

  @Test func leadingZerosAreNormalizedEverywhere() throws {
    let text =
      T.service(
        spec: """
            type: LoadBalancer
            clusterIP: 010.096.000.010
            clusterIPs: [10.96.0.10]
            externalIPs: [192.000.002.001]
            loadBalancerIP: 203.0.113.09
            loadBalancerSourceRanges: [010.0.0.0/08]
            ports:
            - port: 80
          """,
        status: "  loadBalancer:\n    ingress:\n    - ip: 203.000.113.001")
      + "---\n"
      + T.slice(body: "endpoints:\n- addresses: [010.244.001.005]")
        + """
        ---
        apiVersion: v1
        kind: Node
        metadata: {name: node-a}
        spec: {podCIDR: 10.244.01.0/24}
        status:
          addresses:
          - {type: InternalIP, address: 192.168.010.011}
        """
    let r = try T.load(text, file: "z.yaml")
    let svc = try #require(r.state.services.first)
    #expect(svc.spec.clusterIP == "10.96.0.10")
    #expect(svc.spec.clusterIPs == ["10.96.0.10"])
    #expect(svc.spec.externalIPs == ["192.0.2.1"])
    #expect(svc.spec.loadBalancerIP == "203.0.113.9")
    #expect(svc.spec.loadBalancerSourceRanges == ["10.0.0.0/8"])
    #expect(svc.status?.loadBalancer?.ingress?.first?.ip == "203.0.113.1")
    #expect(r.state.endpointSlices.first?.endpoints?.first?.addresses == ["10.244.1.5"])
    let node = try #require(r.state.nodes.first)
    #expect(node.spec?.podCIDR == "10.244.1.0/24")
    #expect(node.spec?.podCIDRs == ["10.244.1.0/24"])
    #expect(node.status?.addresses?.first?.address == "192.168.10.11")

    let fields = r.warnings.map { w in
      // "z.yaml: document N: Kind ns/name: FIELD: message (line L)"
      String(w.split(separator: ": ")[3])
    }
    #expect(
      fields == [
        "spec.clusterIP", "spec.externalIPs[0]", "spec.loadBalancerIP",
        "spec.loadBalancerSourceRanges[0]", "status.loadBalancer.ingress[0].ip",
        "endpoints[0].addresses[0]", "spec.podCIDR", "status.addresses[0].address",
      ])
    #expect(
      r.warnings[0]
        == "z.yaml: document 1: Service default/web: spec.clusterIP: \"010.096.000.010\" has leading zeros; read as decimal and normalized to \"10.96.0.10\" (line 7)"
    )
    #expect(r.warnings.allSatisfy { $0.contains("has leading zeros; read as decimal") })
  }

  @Test func nodeInvalidCIDRsAndAddressesAreSkipped() throws {
    let text = """
      apiVersion: v1
      kind: Node
      metadata:
        name: node-a
        labels: {topology.kubernetes.io/zone: z1}
      spec:
        podCIDR: 10.244.0.0/33
        podCIDRs: [10.244.0.0/33, "fd00:10:244::/64", banana]
      status:
        addresses:
        - {type: InternalIP, address: 192.168.1.300}
        - {type: InternalIP, address: 192.168.1.10}
        - {type: Hostname, address: node-a}
        - {type: ExternalIP, address: "2001:DB8::10"}
      """
    let r = try T.load(text, file: "node.yaml")
    let node = try #require(r.state.nodes.first)
    #expect(node.spec?.podCIDR == "fd00:10:244::/64")
    #expect(node.spec?.podCIDRs == ["fd00:10:244::/64"])
    #expect(
      node.status?.addresses == [
        NodeAddress(type: "InternalIP", address: "192.168.1.10"),
        NodeAddress(type: "Hostname", address: "node-a"),
        NodeAddress(type: "ExternalIP", address: "2001:db8::10"),
      ])
    #expect(
      r.warnings == [
        "node.yaml: document 1: Node node-a: spec.podCIDR: invalid CIDR \"10.244.0.0/33\"; skipped (line 7)",
        "node.yaml: document 1: Node node-a: spec.podCIDRs[0]: invalid CIDR \"10.244.0.0/33\"; skipped (line 8)",
        "node.yaml: document 1: Node node-a: spec.podCIDRs[2]: invalid CIDR \"banana\"; skipped (line 8)",
        "node.yaml: document 1: Node node-a: status.addresses[0].address: invalid IP address \"192.168.1.300\"; address skipped (line 11)",
      ])
  }

  @Test func sliceWithoutServiceLabelWarns() throws {
    let text = """
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata: {name: orphan, namespace: x}
      addressType: IPv6
      endpoints:
      - addresses: ["FD00::0001"]
      """
    let r = try T.load(text, file: "o.yaml")
    #expect(r.state.endpointSlices.first?.endpoints?.first?.addresses == ["fd00::1"])
    #expect(
      r.warnings == [
        "o.yaml: document 1: EndpointSlice x/orphan: metadata.labels[\"kubernetes.io/service-name\"]: missing: the slice cannot be matched to a Service (line 3)"
      ])
  }

  @Test func fqdnSlicesKeepAddresses() throws {
    let r = try T.load(
      T.slice(addressType: "FQDN", body: "endpoints:\n- addresses: [db.example.com]"))
    #expect(r.state.endpointSlices.first?.endpoints?.first?.addresses == ["db.example.com"])
    #expect(r.warnings.isEmpty)
  }

  /// The API watcher calls Validation directly; warnings are `field: message`.
  @Test func directValidation() throws {
    var slice = EndpointSlice(
      metadata: ObjectMeta(
        name: "s", namespace: "ns", labels: [EndpointSlice.serviceNameLabel: "a"]),
      addressType: "IPv4",
      endpoints: [Endpoint(addresses: ["10.0.0.1"]), Endpoint(addresses: ["x", "10.0.0.02"])],
      ports: [EndpointPort(name: "http", protocol: nil, port: 8080)])
    let (out, warnings) = try Validation.validate(slice)
    #expect(out.endpoints?.map(\.addresses) == [["10.0.0.1"], ["10.0.0.2"]])
    #expect(out.ports?.first?.protocol == "TCP")
    #expect(
      warnings == [
        "endpoints[1].addresses[0]: invalid IP address \"x\"; address skipped",
        "endpoints[1].addresses[1]: \"10.0.0.02\" has leading zeros; read as decimal and normalized to \"10.0.0.2\"",
      ])

    slice.addressType = "ipv4"
    #expect(throws: ValidationError.self) { try Validation.validate(slice) }
    do {
      _ = try Validation.validate(slice)
    } catch {
      #expect(error.field == "addressType")
      #expect(error.description.hasPrefix("addressType: unsupported value \"ipv4\""))
    }

    let svc = Service(
      metadata: ObjectMeta(name: "a"),
      spec: ServiceSpec(clusterIP: "10.96.0.1", ports: [ServicePort(port: 80)]))
    let (normalized, svcWarnings) = try Validation.validate(svc)
    #expect(normalized.spec.type == "ClusterIP")
    #expect(normalized.spec.clusterIPs == ["10.96.0.1"])
    #expect(normalized.spec.ports?.first?.protocol == "TCP")
    #expect(normalized.spec.ports?.first?.targetPort == .int(80))
    #expect(svcWarnings.isEmpty)

    let node = Node(metadata: ObjectMeta(name: nil))
    do {
      _ = try Validation.validate(node)
      Issue.record("expected an error")
    } catch {
      #expect(
        error == ValidationError(field: "metadata.name", message: "required field is missing"))
    }
  }
}

@Test func invalidExternalIPIsSkippedWithAWarning() throws {
  let text = """
    apiVersion: v1
    kind: Service
    metadata: {name: web, namespace: default}
    spec:
      clusterIP: 10.96.0.10
      externalIPs: [192.0.2.1, 192.0.2.x]
      ports: [{port: 80}]
    """
  let r = try ManifestLoader.load(text: text, file: "x.yaml")
  #expect(r.state.services.first?.spec.externalIPs == ["192.0.2.1"])
  #expect(r.warnings.count == 1)
  #expect(r.warnings.first?.contains("spec.externalIPs[1]: invalid IP address \"192.0.2.x\"; address skipped") == true)
}
