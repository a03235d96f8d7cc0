import FakeKubeAPI
import Foundation
import KubeWatch
import Testing

@Suite struct KubeConfigTests {
  static func b64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }

  @Test func dataVariant() throws {
    let yaml = """
      apiVersion: v1
      kind: Config
      current-context: prod
      clusters:
      - name: other
        cluster:
          server: https://10.0.0.9:6443
      - name: main
        cluster:
          server: https://10.0.0.1:6443/
          certificate-authority-data: \(Self.b64("CA-PEM"))
      contexts:
      - name: prod
        context:
          cluster: main
          user: admin
      users:
      - name: admin
        user:
          client-certificate-data: \(Self.b64("CERT-PEM"))
          client-key-data: \(Self.b64("KEY-PEM"))
          token: abc.def
      """
    let c = try KubeConfig.parse(yaml: yaml, path: "/etc/kube/config")
    #expect(c.server == "https://10.0.0.1:6443")
    #expect(c.certificateAuthorityPEM == Array("CA-PEM".utf8))
    #expect(c.clientCertificatePEM == Array("CERT-PEM".utf8))
    #expect(c.clientKeyPEM == Array("KEY-PEM".utf8))
    #expect(c.token == "abc.def")
    #expect(c.tokenFile == nil)
    #expect(!c.insecureSkipTLSVerify)
    #expect(c.source.contains("/etc/kube/config"))
  }

  @Test func fileVariantWithRelativePaths() throws {
    let dir = try TempDir()
    defer { dir.cleanup() }
    _ = try dir.write("pki/ca.crt", "CA-FILE")
    _ = try dir.write("pki/client.crt", "CERT-FILE")
    let absKey = try dir.write("elsewhere/client.key", "KEY-FILE")
    let tokenPath = try dir.write("token", "file-token\n")
    let path = try dir.write(
      "kubeconfig",
      """
      current-context: c
      clusters:
      - name: k
        cluster:
          server: https://127.0.0.1:6443
          certificate-authority: pki/ca.crt
      contexts:
      - name: c
        context: {cluster: k, user: u}
      - name: insecure
        context: {cluster: k2}
      users:
      - name: u
        user:
          client-certificate: pki/client.crt
          client-key: \(absKey)
          tokenFile: token
      """)
    let c = try KubeConfig.load(kubeconfig: path)
    #expect(c.certificateAuthorityPEM == Array("CA-FILE".utf8))
    #expect(c.clientCertificatePEM == Array("CERT-FILE".utf8))
    #expect(c.clientKeyPEM == Array("KEY-FILE".utf8))
    #expect(c.tokenFile == tokenPath)
    #expect(c.token == nil)
  }

  @Test func insecureSkipVerifyAndExplicitContext() throws {
    let yaml = """
      current-context: a
      clusters:
      - name: k
        cluster:
          server: https://example.invalid:443
          insecure-skip-tls-verify: true
      contexts:
      - name: a
        context: {cluster: missing}
      - name: b
        context: {cluster: k}
      """
    let c = try KubeConfig.parse(yaml: yaml, path: "cfg", context: "b")
    #expect(c.insecureSkipTLSVerify)
    #expect(c.certificateAuthorityPEM == nil)
    #expect(c.token == nil && c.clientCertificatePEM == nil)
  }

  /// Every broken kubeconfig names the file and the field at fault.
  @Test(arguments: [
    ("clusters: []\ncontexts: []\n", "current-context", "not set"),
    ("current-context: x\ncontexts: []\n", "current-context", "context \"x\" not found"),
    (
      "current-context: x\ncontexts:\n- name: x\n  context: {user: u}\n",
      "contexts[name=x].context.cluster", "missing"
    ),
    (
      "current-context: x\ncontexts:\n- name: x\n  context: {cluster: k}\nclusters: []\n",
      "contexts[name=x].context.cluster", "cluster \"k\" not found"
    ),
    (
      "current-context: x\ncontexts:\n- name: x\n  context: {cluster: k}\nclusters:\n- name: k\n  cluster: {}\n",
      "clusters[name=k].cluster.server", "missing"
    ),
    (
      "current-context: x\ncontexts:\n- name: x\n  context: {cluster: k}\nclusters:\n- name: k\n  cluster: {server: 'ftp://h'}\n",
      "clusters[name=k].cluster.server", "not an http(s) URL"
    ),
    (
      "current-context: x\ncontexts:\n- name: x\n  context: {cluster: k}\nclusters:\n- name: k\n  cluster: {server: 'https://h', certificate-authority: nope/ca.crt}\n",
      "clusters[name=k].cluster.certificate-authority", "does not exist"
    ),
    (
      "current-context: x\ncontexts:\n- name: x\n  context: {cluster: k}\nclusters:\n- name: k\n  cluster: {server: 'https://h', certificate-authority-data: '@@@'}\n",
      "clusters[name=k].cluster.certificate-authority-data", "base64"
    ),
    (
      "current-context: x\ncontexts:\n- name: x\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {server: 'https://h'}\nusers: []\n",
      "contexts[name=x].context.user", "user \"u\" not found"
    ),
    (
      "current-context: x\ncontexts:\n- name: x\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {server: 'https://h'}\nusers:\n- name: u\n  user: {client-certificate-data: Q0VSVA==}\n",
      "users[name=u].user.client-key", "missing"
    ),
    (
      "current-context: x\ncontexts:\n- name: x\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {server: 'https://h'}\nusers:\n- name: u\n  user: {tokenFile: /nonexistent/token}\n",
      "users[name=u].user.tokenFile", "does not exist"
    ),
    (
      "current-context: x\ncontexts:\n- name: x\n  context: {cluster: k, user: u}\nclusters:\n- name: k\n  cluster: {server: 'https://h'}\nusers:\n- name: u\n  user: {exec: {command: aws}}\n",
      "users[name=u].user.exec", "not supported"
    ),
  ])
  func errorsNameFileAndField(yaml: String, field: String, message: String) throws {
    let path = "/tmp/kubewatch-nonexistent-dir/kubeconfig.yaml"
    let error = try #require(throws: KubeConfigError.self) {
      try KubeConfig.parse(yaml: yaml, path: path)
    }
    #expect(error.file == path)
    #expect(error.field == field)
    #expect(error.message.contains(message), "\(error)")
    #expect(error.description.contains(path) && error.description.contains(field))
  }

  @Test func missingFileIsNamed() throws {
    let error = try #require(throws: KubeConfigError.self) {
      try KubeConfig.load(kubeconfig: "/nonexistent/kubeconfig")
    }
    #expect(error.description.contains("/nonexistent/kubeconfig"))
    #expect(error.message.contains("does not exist"))
  }

  @Test func invalidYAMLIsNamed() throws {
    let error = try #require(throws: KubeConfigError.self) {
      try KubeConfig.parse(yaml: "clusters: {a: [1, 2", path: "/x/cfg")
    }
    #expect(error.file == "/x/cfg")
  }

  @Test func inCluster() throws {
    let dir = try TempDir()
    defer { dir.cleanup() }
    let tokenPath = try dir.write("token", "sa-token")
    _ = try dir.write("ca.crt", "CA")
    let c = try KubeConfig.inCluster(
      environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"],
      serviceAccountDirectory: dir.path)
    #expect(c.server == "https://10.96.0.1:443")
    #expect(c.tokenFile == tokenPath)
    #expect(c.certificateAuthorityPEM == Array("CA".utf8))

    let v6 = try KubeConfig.inCluster(
      environment: ["KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"],
      serviceAccountDirectory: dir.path)
    #expect(v6.server == "https://[fd00::1]:6443")

    let noHost = try #require(throws: KubeConfigError.self) {
      try KubeConfig.inCluster(environment: [:], serviceAccountDirectory: dir.path)
    }
    #expect(noHost.field == "KUBERNETES_SERVICE_HOST")

    let noCA = try #require(throws: KubeConfigError.self) {
      try KubeConfig.inCluster(
        environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"],
        serviceAccountDirectory: dir.path + "/missing")
    }
    #expect(noCA.message.contains("does not exist"))
  }

  @Test func badPEMIsAConfigError() throws {
    let error = try #require(throws: KubeConfigError.self) {
      _ = try KubeClient(
        config: KubeConfig(
          server: "https://127.0.0.1:1", certificateAuthorityPEM: Array("garbage".utf8)))
    }
    #expect(error.field == "certificate authority")
  }
}

@Suite struct JSONFramerTests {
  static let events: [String] = [
    #"{"type":"ADDED","object":{"metadata":{"name":"a{b}","labels":{"x":"q\"}"}}}}"#,
    #"{"type":"MODIFIED","object":{"list":[{"a":1},{"b":"]"}],"s":"\\"}}"#,
    #"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"12"}}}"#,
  ]

  @Test func splitAtEveryPosition() throws {
    let stream = Array(Self.events.joined(separator: "\n").utf8) + Array("\n".utf8)
    for cut in 0...stream.count {
      var f = JSONFramer()
      var docs = try f.push(stream[..<cut])
      docs += try f.push(stream[cut...])
      try f.finish()
      #expect(docs.map { String(decoding: $0, as: UTF8.self) } == Self.events, "cut at \(cut)")
    }
  }

  @Test func byteByByteAndWithoutNewlines() throws {
    var f = JSONFramer()
    var docs: [[UInt8]] = []
    for b in Array(Self.events.joined().utf8) { docs += try f.push([b]) }
    try f.finish()
    #expect(docs.count == 3)
    #expect(String(decoding: docs[1], as: UTF8.self) == Self.events[1])
  }

  @Test func truncatedAndGarbage() throws {
    var f = JSONFramer()
    #expect(try f.push(Array(#"{"type":"ADD"#.utf8)).isEmpty)
    #expect(throws: JSONFramer.FramingError.self) { try f.finish() }
    var g = JSONFramer()
    #expect(throws: JSONFramer.FramingError.self) { try g.push(Array("<html>".utf8)) }
  }
}
