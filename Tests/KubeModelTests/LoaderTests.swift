import Foundation
import KubeModel
import Testing

private typealias T = TestSupport

@Suite("Manifest loading")
struct LoaderTests {
  @Test func multiDocumentYAMLWithEmptyDocuments() throws {
    let text = """
      # leading comment
      ---
      ---
      \(T.service())
      ---
      # only a comment
      ---
      \(T.slice())
      ---
      apiVersion: v1
      kind: Node
      metadata:
        name: node-a
      ---
      """
    let r = try T.load(text)
    #expect(r.state.services.map(\.key) == ["default/web"])
    #expect(r.state.endpointSlices.map(\.key) == ["default/web-abc"])
    #expect(r.state.nodes.map { $0.metadata.name } == ["node-a"])
    #expect(r.warnings.isEmpty)
  }

  @Test func documentIndexCountsEmptyDocuments() throws {
    // A leading "---" starts document 1; the second one starts document 2.
    let text = "---\n---\n" + T.service(spec: "  ports:\n  - port: 70000")
    let e = try #require(T.error(text, file: "a.yaml"))
    #expect(e.documentIndex == 2)
    #expect(
      e.description.hasPrefix(
        "a.yaml: document 2: Service default/web: spec.ports[0].port: must be between 1 and 65535 (got 70000)"
      ))
    #expect(e.line == 9)
  }

  @Test func json() throws {
    let text = """
      {"apiVersion":"v1","kind":"Service","metadata":{"name":"web","namespace":"prod",\
      "labels":{"app":"web"}},"spec":{"type":"NodePort","clusterIP":"10.96.0.10",\
      "ports":[{"name":"http","protocol":"TCP","port":80,"targetPort":"http","nodePort":30080}]},\
      "status":{"loadBalancer":{}}}
      """
    let r = try T.load(text, file: "svc.json")
    let svc = try #require(r.state.services.first)
    #expect(svc.key == "prod/web")
    #expect(svc.spec.ports?.first?.targetPort == .string("http"))
    #expect(svc.spec.ports?.first?.nodePort == 30080)
    #expect(svc.metadata.labels == ["app": "web"])
  }

  @Test func jsonTypeErrorNamesField() throws {
    let text = """
      {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"ports": [{"port": 80}, {"name": "b", "port": "abc"}]}
      }
      """
    let e = try #require(T.error(text, file: "svc.json"))
    #expect(
      e.description
        == "svc.json: document 1: Service default/web: spec.ports[1].port: expected an integer, got \"abc\" (line 5)"
    )
  }

  @Test func v1ListWithNestedListAndUnknownKinds() throws {
    let text = """
      apiVersion: v1
      kind: List
      items:
      - apiVersion: v1
        kind: Service
        metadata: {name: a}
        spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}
      - apiVersion: v1
        kind: ConfigMap
        metadata: {name: cm}
      - apiVersion: v1
        kind: List
        items:
        - apiVersion: v1
          kind: Service
          metadata: {name: b}
          spec: {clusterIP: 10.96.0.2, ports: [{port: 80}]}
      """
    let r = try T.load(text)
    #expect(r.state.services.map(\.key) == ["default/a", "default/b"])
    #expect(r.warnings == ["ignored kinds: ConfigMap (1)"])
  }

  @Test func typedListsDefaultItemKind() throws {
    let text = """
      apiVersion: v1
      kind: ServiceList
      metadata: {resourceVersion: "42"}
      items:
      - metadata: {name: a, namespace: x}
        spec: {clusterIP: 10.96.0.1, ports: [{port: 80}]}
      ---
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSliceList
      items:
      - metadata: {name: a-1, namespace: x, labels: {kubernetes.io/service-name: a}}
        addressType: IPv4
        endpoints: [{addresses: [10.0.0.1]}]
      ---
      apiVersion: v1
      kind: NodeList
      items: null
      """
    let r = try T.load(text)
    #expect(r.state.services.map(\.key) == ["x/a"])
    #expect(r.state.endpointSlices.map(\.key) == ["x/a-1"])
    #expect(r.state.nodes.isEmpty)
  }

  @Test func errorInsideListNamesItem() throws {
    let text = """
      apiVersion: v1
      kind: List
      items:
      - apiVersion: v1
        kind: Service
        metadata: {name: a}
        spec: {ports: [{port: 80}]}
      - apiVersion: v1
        kind: Service
        metadata: {name: b}
        spec: {type: Magic}
      """
    let e = try #require(T.error(text, file: "l.yaml"))
    #expect(e.item == "items[1]")
    #expect(
      e.description
        == "l.yaml: document 1: items[1]: Service default/b: spec.type: unsupported value \"Magic\": must be one of ClusterIP, NodePort, LoadBalancer, ExternalName (line 11)"
    )
  }

  @Test func listItemsMustBeAList() throws {
    let e = try #require(T.error("apiVersion: v1\nkind: List\nitems: {a: 1}\n"))
    #expect(e.field == "items")
    #expect(e.message == "expected a list, got an object")
  }

  @Test func unknownKindsInOneWarning() throws {
    let text = """
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: a}
      ---
      apiVersion: apps/v1
      kind: Deployment
      metadata: {name: d}
      spec: {replicas: 3}
      ---
      apiVersion: v1
      kind: ConfigMap
      metadata: {name: b}
      ---
      apiVersion: serving.knative.dev/v1
      kind: Service
      metadata: {name: k}
      spec: {template: {}}
      ---
      apiVersion: discovery.k8s.io/v1beta1
      kind: EndpointSlice
      metadata: {name: old}
      addressType: IPv4
      endpoints: [{addresses: [1.2.3.4], topology: {}}]
      """
    let r = try T.load(text)
    #expect(r.state == ClusterState())
    #expect(
      r.warnings == [
        "ignored kinds: ConfigMap (2), Deployment (1), EndpointSlice (discovery.k8s.io/v1beta1) (1), "
          + "Service (serving.knative.dev/v1) (1)"
      ])
  }

  @Test func unknownFieldsAreIgnored() throws {
    let text = T.service(
      spec: """
          clusterIP: 10.96.0.10
          someFutureField: {a: [1, 2]}
          ports:
          - port: 80
            appProtocol: http
        """)
    #expect(try T.load(text).state.services.count == 1)
  }

  @Test func syntaxErrorNamesFileAndDocument() throws {
    let text = T.service() + "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: [unclosed\n"
    let e = try #require(T.error(text, file: "bad.yaml"))
    #expect(e.file == "bad.yaml")
    #expect(e.documentIndex == 2)
    #expect(e.description.hasPrefix("bad.yaml: document 2: syntax error at line "))
  }

  @Test func duplicateKeyIsASyntaxError() throws {
    let e = try #require(T.error("apiVersion: v1\nkind: Service\nkind: Node\n", file: "d.yaml"))
    #expect(e.description.hasPrefix("d.yaml: document 1: syntax error at line "))
    #expect(e.message.contains("duplicate key \"kind\""))
  }

  @Test func documentMustBeAnObject() throws {
    let e = try #require(T.error("- a\n- b\n", file: "s.yaml"))
    #expect(
      e.description
        == "s.yaml: document 1: expected an object with apiVersion and kind, got a list (line 1)")
  }

  @Test func missingKindAndApiVersion() throws {
    let e1 = try #require(T.error("apiVersion: v1\nmetadata: {name: a}\n", file: "k.yaml"))
    #expect(e1.description == "k.yaml: document 1: kind: required field is missing (line 1)")
    let e2 = try #require(T.error("kind: Service\nmetadata: {name: a}\n", file: "k.yaml"))
    #expect(
      e2.description
        == "k.yaml: document 1: Service: apiVersion: required field is missing (line 1)")
  }

  @Test func missingName() throws {
    let text = "apiVersion: v1\nkind: Service\nmetadata:\n  namespace: x\nspec: {}\n"
    let e = try #require(T.error(text, file: "n.yaml"))
    #expect(e.field == "metadata.name")
    #expect(e.object == "Service")
    #expect(
      e.description
        == "n.yaml: document 1: Service: metadata.name: required field is missing (line 4)")
    let noMeta = try #require(T.error("apiVersion: v1\nkind: Node\n", file: "n.yaml"))
    #expect(noMeta.field == "metadata")
    #expect(noMeta.message == "required field is missing")
  }

  @Test func decodingErrors() throws {
    // A quoted number is a string, as for the API server.
    let quoted = try #require(T.error(T.service(spec: "  ports:\n  - port: \"80\"")))
    #expect(quoted.field == "spec.ports[0].port")
    #expect(quoted.message == "expected an integer, got \"80\"")
    #expect(quoted.object == "Service default/web")

    let missing = try #require(T.error(T.service(spec: "  ports:\n  - name: a")))
    #expect(missing.field == "spec.ports[0].port")
    #expect(missing.message == "required field is missing")

    let list = try #require(T.error(T.service(spec: "  ports: {port: 80}")))
    #expect(list.field == "spec.ports")
    #expect(list.message == "expected a list, got an object")

    let labels = try #require(
      T.error(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  labels:\n    app.kubernetes.io/name: [x]\nspec: {}\n"
      ))
    #expect(labels.field == "metadata.labels[\"app.kubernetes.io/name\"]")
    #expect(labels.line == 6)

    let slice = try #require(
      T.error(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s}\nendpoints: []\n"
      ))
    #expect(
      slice.description
        == "test.yaml: document 1: EndpointSlice default/s: addressType: required field is missing (line 1)"
    )

    let ready = try #require(
      T.error(T.slice(body: "endpoints:\n- addresses: [10.0.0.1]\n  conditions: {ready: maybe}")))
    #expect(ready.field == "endpoints[0].conditions.ready")
    #expect(ready.message == "expected a boolean (true or false), got \"maybe\"")
  }

  @Test func duplicateObjects() throws {
    let text =
      T.service() + "---\n" + T.service("other") + "---\n" + T.service(namespace: "default")
    let e = try #require(T.error(text, file: "dup.yaml"))
    #expect(
      e.description
        == "dup.yaml: document 3: Service default/web: duplicate object (first defined in dup.yaml: document 1) (line 23)"
    )
    // Same name in another namespace or of another kind is fine.
    let ok = T.service() + "---\n" + T.service(namespace: "other") + "---\n" + T.slice("web")
    #expect(try T.load(ok).state.services.count == 2)
  }

  @Test func duplicatesAcrossFilesNameBoth() throws {
    let dir = try T.tempDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try T.write(T.service(), to: "\(dir)/a.yaml")
    try T.write(
      "apiVersion: v1\nkind: List\nitems:\n- "
        + T.service().split(separator: "\n").joined(separator: "\n  ") + "\n", to: "\(dir)/b.yaml")
    do {
      _ = try ManifestLoader.load(paths: [dir])
      Issue.record("expected a duplicate error")
    } catch let e as ManifestError {
      #expect(e.file == "\(dir)/b.yaml")
      #expect(
        e.description.contains(
          "\(dir)/b.yaml: document 1: items[0]: Service default/web: duplicate object"))
      #expect(e.description.contains("first defined in \(dir)/a.yaml: document 1"))
    }
  }

  @Test func directoriesAreReadRecursivelyInPathOrder() throws {
    let dir = try T.tempDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try T.write(T.service("c"), to: "\(dir)/z/c.yml")
    try T.write(T.service("b"), to: "\(dir)/b.json.yaml")
    try T.write(
      #"{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "a"}, "spec": {}}"#,
      to: "\(dir)/a.JSON")
    try T.write(T.service("ignored"), to: "\(dir)/notes.txt")
    try T.write(T.service("hidden"), to: "\(dir)/..2024_01_01/x.yaml")
    try T.write(T.service("hidden2"), to: "\(dir)/.hidden.yaml")
    try FileManager.default.createDirectory(
      atPath: "\(dir)/empty", withIntermediateDirectories: true)
    let files = try ManifestLoader.manifestFiles(paths: [dir])
    #expect(files == ["\(dir)/a.JSON", "\(dir)/b.json.yaml", "\(dir)/z/c.yml"])
    let r = try ManifestLoader.load(paths: [dir])
    #expect(r.state.services.map(\.key) == ["default/a", "default/b", "default/c"])
    #expect(r.warnings.isEmpty)

    // Files named directly are read whatever their extension; repeats are read once.
    let r2 = try ManifestLoader.load(paths: ["\(dir)/notes.txt", "\(dir)/z", "\(dir)/z/c.yml"])
    #expect(r2.state.services.map(\.key) == ["default/ignored", "default/c"])

    let r3 = try ManifestLoader.load(paths: ["\(dir)/empty"])
    #expect(r3.warnings == ["\(dir)/empty: no manifest files (*.yaml, *.yml, *.json) found"])
  }

  @Test func errorInFileNamesTheFile() throws {
    let dir = try T.tempDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try T.write(T.service("a"), to: "\(dir)/1.yaml")
    try T.write(
      T.service("b", spec: "  type: ClusterIP\n  clusterIP: 10.96.0.300"), to: "\(dir)/2.yaml")
    do {
      _ = try ManifestLoader.load(paths: [dir])
      Issue.record("expected an error")
    } catch let e as ManifestError {
      #expect(
        e.description
          == "\(dir)/2.yaml: document 1: Service default/b: spec.clusterIP: invalid IP address \"10.96.0.300\" (line 7)"
      )
    }
  }

  @Test func missingPath() throws {
    #expect(throws: ManifestError.self) { try ManifestLoader.load(paths: ["/nonexistent/x.yaml"]) }
    do {
      _ = try ManifestLoader.load(paths: ["/nonexistent/x.yaml"])
    } catch let e as ManifestError {
      #expect(e.description == "/nonexistent/x.yaml: No such file or directory")
    }
  }

  @Test func warningsNameFileDocumentObjectAndField() throws {
    let text =
      T.service()
      + "---\n"
      + T.slice(
        body: """
          endpoints:
          - addresses: ["10.244.1.5"]
          - addresses: ["not-an-ip"]
          - addresses: ["fd00::5", "10.244.1.7"]
          - addresses: ["010.244.001.008"]
          """)
    let r = try T.load(text, file: "w.yaml")
    #expect(
      r.warnings == [
        "w.yaml: document 2: EndpointSlice default/web-abc: endpoints[1].addresses[0]: invalid IP address \"not-an-ip\"; address skipped (line 21)",
        "w.yaml: document 2: EndpointSlice default/web-abc: endpoints[1]: no valid addresses; endpoint skipped (line 21)",
        "w.yaml: document 2: EndpointSlice default/web-abc: endpoints[2].addresses[0]: \"fd00::5\" is not an IPv4 address (addressType is IPv4); address skipped (line 22)",
        "w.yaml: document 2: EndpointSlice default/web-abc: endpoints[3].addresses[0]: \"010.244.001.008\" has leading zeros; read as decimal and normalized to \"10.244.1.8\" (line 23)",
      ])
    let eps = try #require(r.state.endpointSlices.first?.endpoints)
    #expect(eps.map(\.addresses) == [["10.244.1.5"], ["10.244.1.7"], ["10.244.1.8"]])
  }

  @Test func yamlScalarTyping() throws {
    // Plain numbers in YAML 1.1 forms, booleans, `!!str`, anchors, aliases and merge keys.
    let text = """
      apiVersion: v1
      kind: Service
      metadata:
        name: web
        labels: &labels {app: web, version: !!str 1.10, enabled: "true"}
        annotations: *labels
      spec:
        clusterIP: 10.96.0.10
        ports:
        - &base {name: a, port: 0x50, protocol: TCP}
        - <<: *base
          name: b
          port: +0o1273
        - {name: c, port: 1_000, targetPort: "web"}
      ---
      apiVersion: discovery.k8s.io/v1
      kind: EndpointSlice
      metadata: {name: s, labels: {kubernetes.io/service-name: web}}
      addressType: IPv4
      endpoints:
      - addresses: [10.0.0.1]
        conditions: {ready: yes, serving: On, terminating: FALSE}
      """
    let r = try T.load(text)
    let svc = try #require(r.state.services.first)
    #expect(svc.metadata.labels == ["app": "web", "version": "1.10", "enabled": "true"])
    #expect(svc.metadata.annotations == svc.metadata.labels)
    #expect(svc.spec.ports?.map(\.port) == [80, 699, 1000])
    #expect(svc.spec.ports?.map(\.name) == ["a", "b", "c"])
    #expect(svc.spec.ports?[2].targetPort == .string("web"))
    let conditions = try #require(r.state.endpointSlices.first?.endpoints?.first?.conditions)
    #expect(conditions == EndpointConditions(ready: true, serving: true, terminating: false))

    let quotedBool = try #require(
      T.error(T.slice(body: "endpoints:\n- addresses: [10.0.0.1]\n  conditions: {ready: \"true\"}"))
    )
    #expect(quotedBool.field == "endpoints[0].conditions.ready")
    #expect(quotedBool.message == "expected a boolean (true or false), got \"true\"")
    let octal = try #require(T.error(T.service(spec: "  ports:\n  - port: 08080")))
    #expect(octal.message == "expected an integer, got \"08080\"")
    let null = try #require(
      T.error(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s}\naddressType: ~\n"
      ))
    #expect(null.field == "addressType")
    #expect(null.message == "must not be null")
  }

  @Test func jsonEscapesTabsAndFallbacks() throws {
    // Tab indentation, escaped slashes and a surrogate pair (as Python writes non-BMP text).
    let text =
      "{\n\t\"apiVersion\": \"v1\",\n\t\"kind\": \"Service\",\n\t\"metadata\": {\n"
      + "\t\t\"name\": \"web\",\n\t\t\"annotations\": {\"u\": \"http:\\/\\/x\\u00e9\\ud83d\\ude00\"}\n"
      + "\t},\n\t\"spec\": {\"ports\": [{\"port\": 80, \"protocol\": \"UDP\"}]}\n}\n"
    let r = try T.load(text, file: "t.json")
    let svc = try #require(r.state.services.first)
    #expect(svc.metadata.annotations == ["u": "http://x\u{e9}\u{1F600}"])
    #expect(svc.spec.ports?.first?.protocol == "UDP")

    // Flow-style YAML that is not strict JSON still loads.
    let flow =
      "{apiVersion: v1, kind: Service, metadata: {name: flow}, spec: {ports: [{port: 80},]}}"
    #expect(try T.load(flow).state.services.map(\.key) == ["default/flow"])

    // Broken JSON is a syntax error naming file and document.
    let broken = try #require(T.error("{\"apiVersion\": \"v1\",\n \"kind\": ", file: "b.json"))
    #expect(broken.description.hasPrefix("b.json: document 1: syntax error at line "))

    // A number in a JSON string is not a number.
    let quoted = try #require(
      T.error(
        #"{"apiVersion":"v1","kind":"Service","metadata":{"name":"a"},"spec":{"ports":[{"port":"80"}]}}"#,
        file: "q.json"))
    #expect(quoted.field == "spec.ports[0].port")
    #expect(quoted.message == "expected an integer, got \"80\"")
  }
}
