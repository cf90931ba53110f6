// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "ytempire",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ytempire", targets: ["ytempire"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // System libraries. Package names are Debian's; `make` installs them when missing.
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CGit2", pkgConfig: "libgit2", providers: [.apt(["libgit2-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),

        .target(name: "YAMLKit", dependencies: ["CYAML"]),
        .target(name: "EmpireModel", dependencies: ["YAMLKit"]),
        .target(
            name: "YTEmpireCLI",
            dependencies: [
                "EmpireModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "ytempire", dependencies: ["YTEmpireCLI"]),

        .testTarget(name: "YAMLKitTests", dependencies: ["YAMLKit"]),
        .testTarget(
            name: "EmpireModelTests",
            dependencies: ["EmpireModel", "YAMLKit", "YTEmpireCLI"],
            resources: [.copy("Fixtures")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
