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
    .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
  ],
  targets: [
    .target(
      name: "KubeModel",
      dependencies: ["IPAddr", .product(name: "Yams", package: "Yams")]
    ),
    .target(name: "IPAddr"),
    .target(name: "Synthetic", dependencies: ["IPAddr", "KubeModel"]),
    .target(
      name: "KubeWatch",
      dependencies: [
        "KubeModel",
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Yams", package: "Yams"),
      ]
    ),
    .target(
      name: "ProxyDaemon",
      dependencies: [
        "KubeModel", "NFTables", "ProxyCore", "IPAddr",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "Metrics", package: "swift-metrics"),
        .product(name: "Prometheus", package: "swift-prometheus"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ]
    ),
    .testTarget(
      name: "ProxyDaemonTests",
      dependencies: [
        "ProxyDaemon", "KubeModel", "NFTables", "ProxyCore", "TestSupport",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
      ]
    ),
    .testTarget(
      name: "DataplaneTests",
      dependencies: ["NFTProxyCLI", "ProxyCore", "NFTables", "KubeModel", "TestSupport"]
    ),
    .testTarget(
      name: "KubeWatchTests",
      dependencies: [
        "KubeWatch", "KubeModel", "TestSupport", "FakeKubeAPI",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
      ]
    ),
    .target(
      name: "FakeKubeAPI",
      dependencies: [
        "KubeModel", "TestSupport",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
      ],
      path: "Tests/FakeKubeAPI"
    ),
    .testTarget(
      name: "EndToEndTests",
      dependencies: [
        "NFTProxyCLI", "FakeKubeAPI", "TestSupport", "KubeModel", "NFTables",
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
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
        "KubeModel", "NFTables", "NFTNetlink", "ProxyCore", "Synthetic", "KubeWatch", "ProxyDaemon",
        "IPAddr",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
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
      dependencies: ["NFTProxyCLI", "ProxyCore", "KubeModel", "NFTables", "NFTNetlink", "TestSupport"]
    ),
  ],
  swiftLanguageModes: [.v6]
)
