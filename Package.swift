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
    .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
  ],
  targets: [
    .target(
      name: "KubeModel",
      dependencies: ["IPAddr", .product(name: "Yams", package: "Yams")]
    ),
    .target(name: "IPAddr"),
    .target(
      name: "KubeWatch",
      dependencies: [
        "KubeModel",
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Logging", package: "swift-log"),
      ]
    ),
    .testTarget(
      name: "KubeWatchTests",
      dependencies: [
        "KubeWatch", "KubeModel", "TestSupport",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
      ]
    ),
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
