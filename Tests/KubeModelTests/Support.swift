import Foundation
import KubeModel
import Testing

/// Helpers shared by the KubeModel tests.
enum TestSupport {
  /// A Service document; `spec` and `status` are YAML bodies indented by two spaces.
  static func service(
    _ name: String = "web", namespace: String? = nil,
    spec: String = """
      clusterIP: 10.96.0.10
      ports:
      - name: http
        port: 80
        targetPort: 8080
    """,
    status: String? = nil
  ) -> String {
    var out = """
      apiVersion: v1
      kind: Service
      metadata:
        name: \(name)

      """
    if let namespace { out += "  namespace: \(namespace)\n" }
    out += "spec:\n\(spec)\n"
    if let status { out += "status:\n\(status)\n" }
    return out
  }

  /// An EndpointSlice document for Service `svc`; `body` holds endpoints/ports at top level.
  static func slice(
    _ name: String = "web-abc", svc: String = "web", addressType: String = "IPv4",
    body: String = """
    endpoints:
    - addresses: ["10.244.1.5"]
    ports:
    - name: http
      port: 8080
    """
  ) -> String {
    """
    apiVersion: discovery.k8s.io/v1
    kind: EndpointSlice
    metadata:
      name: \(name)
      labels:
        kubernetes.io/service-name: \(svc)
    addressType: \(addressType)
    \(body)

    """
  }

  static func load(_ text: String, file: String = "test.yaml") throws -> LoadResult {
    try ManifestLoader.load(text: text, file: file)
  }

  /// Loads `text`, expects a ManifestError and returns it.
  static func error(_ text: String, file: String = "test.yaml") -> ManifestError? {
    do {
      _ = try ManifestLoader.load(text: text, file: file)
      return nil
    } catch let e as ManifestError {
      return e
    } catch {
      Issue.record("unexpected error type: \(error)")
      return nil
    }
  }

  /// A fresh temporary directory, removed by `cleanup`.
  static func tempDir() throws -> String {
    let base = FileManager.default.temporaryDirectory.path
    let dir = "\(base)/kubemodel-tests-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
  }

  static func write(_ text: String, to path: String) throws {
    let dir = (path as NSString).deletingLastPathComponent
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    try text.write(toFile: path, atomically: true, encoding: .utf8)
  }
}
