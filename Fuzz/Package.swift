// swift-tools-version: 6.1
// libFuzzer targets over ytempire's parsers: `make fuzz` (long runs) and `make fuzz-smoke`
// (part of `make test`). Built with `-sanitize=fuzzer,address -DFUZZING`; without FUZZING each
// target is a replay tool that runs the files it is given through the same entry point.
import PackageDescription

let package = Package(
    name: "ytempire-fuzz",
    dependencies: [.package(name: "ytempire", path: "..")],
    targets: [
        .target(name: "FuzzDriver"),
        .executableTarget(name: "fuzz-yaml", dependencies: ["FuzzDriver", .product(name: "YTEmpireParsers", package: "ytempire")]),
        .executableTarget(name: "fuzz-manifests", dependencies: ["FuzzDriver", .product(name: "YTEmpireParsers", package: "ytempire")]),
        .executableTarget(name: "fuzz-config", dependencies: ["FuzzDriver", .product(name: "YTEmpireParsers", package: "ytempire")]),
        .executableTarget(name: "fuzz-planfile", dependencies: ["FuzzDriver", .product(name: "YTEmpirePlanFile", package: "ytempire")]),
        .executableTarget(name: "fuzz-webhook", dependencies: ["FuzzDriver", .product(name: "YTEmpireWebhooks", package: "ytempire")]),
        .executableTarget(name: "fuzz-sandbox", dependencies: ["FuzzDriver", .product(name: "YTEmpireSandbox", package: "ytempire")]),
        .executableTarget(name: "fuzz-answers", dependencies: ["FuzzDriver", .product(name: "YTEmpireDriverAnswers", package: "ytempire")]),
    ],
    swiftLanguageModes: [.v6]
)
