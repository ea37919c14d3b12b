// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "ftq",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "ftq", targets: ["ftq"]),
        .library(name: "FTQCore", targets: ["FTQCore"]),
        .library(name: "FTQFormats", targets: ["FTQFormats"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // System libraries. Debian: libssl-dev, libzstd-dev.
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // SHA-256 with the x86 SHA extensions, one stream or two at once (C: intrinsics).
        .target(name: "CSHA256"),

        // Value types, errors, checked arithmetic, files, float conversions, strict JSON.
        .target(name: "FTQCore"),
        // safetensors (single, sharded) and GGUF (single, split) readers and writers.
        .target(name: "FTQFormats", dependencies: ["FTQCore", "FTQKernels"]),
        // Codecs: the scalar reference of every quantizer (the specification) and fast kernels.
        .target(name: "FTQKernels", dependencies: ["FTQCore"]),
        // Memory planning for fine-tuning and inference (`ftq plan`): pure computation from a
        // model's architecture and tensor list; no file access besides loading that input.
        .target(name: "FTQPlan", dependencies: ["FTQCore", "FTQFormats", "FTQKernels"]),
        // Hashing and compression (libcrypto, libzstd).
        .target(name: "FTQArtifacts", dependencies: ["FTQCore", "FTQFormats", "COpenSSL", "CZstd", "CSHA256"]),
        // The subcommands; maps errors to exit codes.
        .target(name: "FTQCommands", dependencies: [
            "FTQCore", "FTQFormats", "FTQArtifacts", "FTQKernels", "FTQPlan",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "ftq", dependencies: ["FTQCommands"]),
        // Benchmarks (tools/bench/): header parsing and conversion kernels, timed in-process.
        .executableTarget(name: "ftq-bench", dependencies: ["FTQCore", "FTQFormats", "FTQArtifacts"]),

        .testTarget(name: "FTQCoreTests", dependencies: ["FTQCore"]),
        .testTarget(name: "FTQKernelsTests", dependencies: ["FTQCore", "FTQKernels", "FTQArtifacts"]),
        .testTarget(name: "FTQFormatsTests", dependencies: ["FTQCore", "FTQFormats"]),
        .testTarget(name: "FTQPlanTests", dependencies: ["FTQCore", "FTQFormats", "FTQKernels", "FTQPlan"]),
        .testTarget(name: "FTQCLITests", dependencies: ["FTQCore", "FTQFormats", "FTQArtifacts", "ftq"]),
    ]
)
