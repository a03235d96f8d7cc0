import Foundation
import NFTNetlink
import NFTProxyCLI
import NFTables
import ProxyCore
import TestSupport
import Testing

/// One directory under `rules/`: `input.yaml`, `args` (node flags) and the reviewed `expected.nft`.
struct GoldenCase: Sendable, CustomStringConvertible {
  var name: String
  var directory: URL
  var description: String { name }

  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent()

  static var all: [GoldenCase] {
    let rules = root.appendingPathComponent("rules")
    let names = (try? FileManager.default.contentsOfDirectory(atPath: rules.path)) ?? []
    return names.sorted().compactMap { name in
      let dir = rules.appendingPathComponent(name)
      guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("input.yaml").path)
      else { return nil }
      return GoldenCase(name: name, directory: dir)
    }
  }

  var expectedURL: URL { directory.appendingPathComponent("expected.nft") }

  /// Compiles the case's manifests with its flags, as `nftproxy dump` would.
  func render() throws -> String {
    NFTText.render(try ruleset())
  }

  func ruleset() throws -> Ruleset {
    let argsText =
      (try? String(contentsOf: directory.appendingPathComponent("args"), encoding: .utf8)) ?? ""
    let args = argsText.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).map(String.init)
    let options = try NodeOptions.parse(args)
    let out = try Pipeline.compile(
      manifests: [directory.appendingPathComponent("input.yaml").path], config: options.config())
    return out.ruleset
  }
}

let updateGolden = ProcessInfo.processInfo.environment["NFTPROXY_UPDATE_GOLDEN"] == "1"

@Suite("Golden rule sets")
struct GoldenTests {
  @Test func thereAreEnoughCases() {
    #expect(GoldenCase.all.count >= 15)
  }

  @Test("compiled output matches expected.nft byte for byte", arguments: GoldenCase.all)
  func matchesExpected(_ c: GoldenCase) throws {
    let text = try c.render()
    if updateGolden {
      try text.write(to: c.expectedURL, atomically: true, encoding: .utf8)
      return
    }
    let expected = try String(contentsOf: c.expectedURL, encoding: .utf8)
    if text != expected {
      let a = text.split(separator: "\n", omittingEmptySubsequences: false)
      let b = expected.split(separator: "\n", omittingEmptySubsequences: false)
      let i = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
      Issue.record(
        """
        \(c.name): output differs from expected.nft at line \(i + 1):
          got:      \(i < a.count ? String(a[i]) : "<end>")
          expected: \(i < b.count ? String(b[i]) : "<end>")
        Regenerate on purpose with NFTPROXY_UPDATE_GOLDEN=1 swift test --filter GoldenTests, then review the diff.
        """)
    }
  }

  @Test("compilation is deterministic", arguments: GoldenCase.all)
  func deterministic(_ c: GoldenCase) throws {
    #expect(try c.render() == c.render())
  }
}

@Suite("Golden rule sets load into the kernel", .enabled(if: KernelTests.enabled))
struct GoldenKernelTests {
  @Test("nft -f accepts expected.nft, and its listing loads again", arguments: GoldenCase.all)
  func loads(_ c: GoldenCase) throws {
    let text = try String(contentsOf: c.expectedURL, encoding: .utf8)
    let ns = try NetNS()
    defer { ns.delete() }
    try ns.nftLoad(text)
    let listing = try ns.nftListRuleset()
    #expect(listing.contains("table ip") || listing.contains("table ip6"))
    let ns2 = try NetNS()
    defer { ns2.delete() }
    try ns2.nftLoad(listing)
    #expect(try ns2.nftListRuleset() == listing)
  }
}

@Suite("Golden rule sets applied over netlink", .enabled(if: KernelTests.enabled))
struct GoldenNetlinkTests {
  @Test("netlink apply lists exactly like nft -f of the text", arguments: GoldenCase.all)
  func netlinkMatchesText(_ c: GoldenCase) throws {
    let ruleset = try c.ruleset()
    let viaText = try NetNS()
    defer { viaText.delete() }
    try viaText.nftLoad(NFTText.render(ruleset))
    let viaNetlink = try NetNS()
    defer { viaNetlink.delete() }
    let backend = try NFTBackend(namespacePath: viaNetlink.path)
    let report = try backend.sync(ruleset)
    #expect(report.kind == .full)
    #expect(try viaNetlink.nftListRuleset() == viaText.nftListRuleset())
    // Read back over netlink: the kernel holds what we meant, and a second sync sends nothing.
    #expect(try backend.diffAgainstKernel(ruleset).isEmpty)
    #expect(try backend.sync(ruleset).kind == .none)
  }
}
