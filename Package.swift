// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "Cairn",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "cairn", targets: ["cairn"])
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .systemLibrary(name: "CFuse3", pkgConfig: "fuse3", providers: [.apt(["libfuse3-dev"])]),
        .target(name: "FuseKit", dependencies: ["CFuse3"]),
        .target(name: "CSQLite", linkerSettings: [.linkedLibrary("sqlite3")]),
        .target(
            name: "CairnCore",
            dependencies: [
                "CSQLite",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),
        .target(name: "CairnMount", dependencies: ["FuseKit", "CairnCore"]),
        .executableTarget(
            name: "cairn",
            dependencies: [
                "CairnCore", "CairnMount",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .target(name: "CairnTestSupport", dependencies: ["CairnCore"]),
        .testTarget(
            name: "CairnCoreTests",
            dependencies: ["CairnCore", "CairnTestSupport", .product(name: "GRDB", package: "GRDB.swift")]),
    ]
)
