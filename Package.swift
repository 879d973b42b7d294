// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "sobot-broker",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sobot-broker", targets: ["sobot-broker"]),
        .library(name: "SobotBrokerClient", targets: ["SobotBrokerClient"]),
        .library(name: "BrokerModuleSDK", targets: ["BrokerModuleSDK"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(name: "CLinuxEvents"),
        .target(
            name: "BrokerModuleSDK",
            dependencies: [.product(name: "Logging", package: "swift-log")]
        ),
        .target(name: "SobotBrokerClient", dependencies: ["BrokerModuleSDK"]),
        .target(
            name: "BrokerCore",
            dependencies: [
                "BrokerModuleSDK",
                "CSQLite",
                "COpenSSL",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "BrokerPostgres",
            dependencies: [
                "BrokerCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "BrokerServer",
            dependencies: [
                "BrokerCore",
                "BrokerPostgres",
                "CLinuxEvents",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .target(
            name: "SobotSimulator",
            dependencies: [
                "BrokerCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "Marketing", dependencies: ["BrokerModuleSDK"], path: "Plugins/Marketing"),
        .target(name: "CRM", dependencies: ["BrokerModuleSDK"], path: "Plugins/CRM"),
        .target(name: "SobotRequest", dependencies: ["BrokerModuleSDK"], path: "Plugins/SobotRequest"),
        .executableTarget(
            name: "sobot-broker",
            dependencies: [
                "BrokerCore",
                "BrokerPostgres",
                "BrokerServer",
                "SobotSimulator",
                "Marketing",
                "CRM",
                "SobotRequest",
                "SobotBrokerClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .executableTarget(
            name: "sobot-broker-fuzz",
            dependencies: ["BrokerCore", "BrokerServer", "Marketing", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "TestSupport",
            dependencies: [
                "BrokerCore", "BrokerPostgres", "BrokerServer", "SobotSimulator", .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "BrokerCoreTests",
            dependencies: [
                "BrokerCore", "SobotSimulator", "TestSupport", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "BrokerPostgresTests",
            dependencies: [
                "BrokerPostgres", "BrokerCore", "BrokerServer", "SobotSimulator", "TestSupport", .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .testTarget(name: "BrokerServerTests", dependencies: ["BrokerServer", "BrokerCore", "SobotSimulator", "TestSupport"]),
        .testTarget(name: "SobotSimulatorTests", dependencies: ["SobotSimulator", "BrokerCore", "TestSupport"]),
        .testTarget(name: "PluginTests", dependencies: ["Marketing", "CRM", "SobotRequest", "BrokerModuleSDK", "BrokerCore", "BrokerServer", "SobotSimulator", "TestSupport"]),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["sobot-broker", "sobot-broker-fuzz", "BrokerServer", "BrokerCore", "SobotSimulator", "TestSupport", "SobotBrokerClient"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
