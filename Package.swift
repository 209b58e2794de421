// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "SwiftPool",
    products: [
        .library(name: "SwiftPool", targets: ["SwiftPool"]),
        .library(name: "CPoolCore", targets: ["CPoolCore"]),
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
    ]
)
