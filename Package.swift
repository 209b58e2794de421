// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "SwiftPool",
    products: [
        .library(name: "SwiftPool", targets: ["SwiftPool"]),
        .library(name: "CPoolCore", targets: ["CPoolCore"]),
    ],
    dependencies: [
        // The benchmark's options and latency percentiles; the library itself needs nothing.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
    ],
    targets: [
        // The C core. Rooted at the package root so that SwiftPM and CMake share one
        // public header folder (SwiftPM refuses a publicHeadersPath outside the target).
        .target(
            name: "CPoolCore",
            path: ".",
            sources: ["Sources/CPoolCore"],
            publicHeadersPath: "include",
            cSettings: [.headerSearchPath("Sources/CPoolCore")],
            linkerSettings: [.linkedLibrary("ffi"), .linkedLibrary("dl"), .linkedLibrary("pthread")]
        ),
        .target(name: "SwiftPool", dependencies: ["CPoolCore"]),
        .testTarget(name: "SwiftPoolTests", dependencies: ["SwiftPool"]),
        .executableTarget(
            name: "swiftpool-bench",
            dependencies: [
                "SwiftPool",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Benchmarks/Swift"
        ),
    ]
)
