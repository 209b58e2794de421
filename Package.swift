// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "SwiftPool",
    products: [
        .library(name: "SwiftPool", targets: ["SwiftPool"]),
        .library(name: "CPoolCore", targets: ["CPoolCore"]),
        // The pool over the ranks of an MPI job: needs Open MPI (libopenmpi-dev), which
        // plain SwiftPool users never do.
        .library(name: "SwiftPoolMPI", targets: ["SwiftPoolMPI"]),
    ],
    dependencies: [
        // The library logs pool events and workers' output through swift-log and counts
        // through swift-metrics (their APIs only: the application picks the backends).
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.5.0"),
        // The benchmark's options and latency percentiles.
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        // `swift package generate-documentation` for the DocC catalog.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
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
        .target(
            name: "SwiftPool",
            dependencies: [
                "CPoolCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // Open MPI's C library, found through pkg-config, and the C calls Swift makes of it
        // (Swift cannot see MPI's handle macros).
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "CPoolMPI", dependencies: ["CMPI"]),
        .target(name: "SwiftPoolMPI", dependencies: ["SwiftPool", "CPoolCore", "CPoolMPI"]),
        // The program the MPI tests run under mpirun (Tests/MPI/run.sh).
        .executableTarget(name: "swiftpool-mpi-check", dependencies: ["SwiftPool", "SwiftPoolMPI"], path: "Tests/MPI",
                          exclude: ["run.sh", "hosts.sh", "processes.sh"]),
        // What the tests' spawned workers run: the functions both sides define by name,
        // and the program that serves them (the test bundle's own main is SwiftPM's).
        .target(name: "SwiftPoolSpawnFunctions", dependencies: ["SwiftPool"], path: "Tests/SpawnFunctions"),
        .executableTarget(name: "swiftpool-spawn-worker", dependencies: ["SwiftPool", "SwiftPoolSpawnFunctions"],
                          path: "Tests/SpawnWorker"),
        .testTarget(
            name: "SwiftPoolTests",
            dependencies: [
                "SwiftPool",
                "SwiftPoolSpawnFunctions",
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]
        ),
        // SwiftPoolMPI's benchmark rows, run under mpirun by scripts/bench.
        .executableTarget(name: "swiftpool-mpi-bench", dependencies: ["SwiftPool", "SwiftPoolMPI"], path: "Benchmarks/MPI"),
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
