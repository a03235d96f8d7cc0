// swift-tools-version:6.1
import PackageDescription

let package = Package(
  name: "nftproxy",
  platforms: [.macOS(.v14)],
  products: [
    .executable(name: "nftproxy", targets: ["nftproxy"])
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
  ],
  targets: [
    .target(
      name: "KubeModel",
      dependencies: ["IPAddr", .product(name: "Yams", package: "Yams")]
    ),
    .target(name: "IPAddr"),
    .target(name: "NFTables", dependencies: ["IPAddr"]),
    .systemLibrary(
      name: "CNetfilter",
      pkgConfig: "libnftnl",
      providers: [.apt(["libnftnl-dev", "libmnl-dev"])]
    ),
    .target(name: "NFTNetlink", dependencies: ["CNetfilter", "NFTables", "IPAddr"]),
    .target(name: "ProxyCore", dependencies: ["IPAddr", "KubeModel", "NFTables"]),
    .target(
      name: "NFTProxyCLI",
      dependencies: [
        "KubeModel", "NFTables", "NFTNetlink", "ProxyCore",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .executableTarget(name: "nftproxy", dependencies: ["NFTProxyCLI"]),
    .testTarget(name: "KubeModelTests", dependencies: ["KubeModel"]),
    .testTarget(name: "NFTablesTests", dependencies: ["NFTables"]),
    .testTarget(name: "NFTNetlinkTests", dependencies: ["NFTNetlink", "NFTables", "IPAddr", "TestSupport"]),
    .target(name: "TestSupport", path: "Tests/TestSupport"),
    .testTarget(name: "ProxyCoreTests", dependencies: ["ProxyCore", "KubeModel", "NFTables"]),
    .testTarget(
      name: "GoldenTests",
      dependencies: ["NFTProxyCLI", "ProxyCore", "KubeModel", "NFTables", "TestSupport"]
    ),
  ],
  swiftLanguageModes: [.v6]
)
