// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "ytempire",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ytempire", targets: ["ytempire"]),
        // For the fuzzers (Fuzz/Package.swift), which link the parsers they exercise.
        .library(name: "YTEmpireParsers", targets: ["YAMLKit", "EmpireModel"]),
        // The plan-file reader (`apply PLAN.json`) and the webhook gate of `serve`, without GRDB,
        // libgit2 or Hummingbird, so the sanitized fuzz build of them stays small.
        .library(name: "YTEmpirePlanFile", targets: ["PlanFile"]),
        .library(name: "YTEmpireWebhooks", targets: ["Webhooks"]),
        .library(name: "YTEmpireSandbox", targets: ["Sandbox"]),
        // The drivers that parse HTTP answers, over the resilience layer (fuzz-answers), without GRDB or Hummingbird.
        .library(name: "YTEmpireDriverAnswers", targets: ["YouTubeDriver", "VaultDriver", "CloudflareDriver", "N8nDriver", "Resilience"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3" ..< "5.0.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // Hummingbird's own dependency; ServerGuard reads its HTTP request parts.
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.34.1"),
    ],
    targets: [
        // System libraries. Package names are Debian's; `make` installs them when missing.
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CGit2", pkgConfig: "libgit2", providers: [.apt(["libgit2-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),

        // What several modules need and none should write again: redaction with one mask, percent-encoding,
        // host:port and loopback checks, the sync→async bridge, posix_spawn. Depends on no other target.
        .target(name: "Basics"),
        .target(name: "YAMLKit", dependencies: ["CYAML"]),
        .target(name: "EmpireModel", dependencies: ["YAMLKit", "Basics"]),
        // libgit2: mirrors, fetch, resolve, tree reads and diffs, signatures, status commits.
        .target(name: "GitKit", dependencies: ["CGit2", "EmpireModel", "Basics"]),
        // libcurl: the async HTTP client every integration call goes through.
        .target(name: "CurlHTTP", dependencies: ["CCurl", "Basics"]),
        // Retry, circuit breakers, rate limiters, quota ledger, fallback chains; configured from RateLimit resources.
        .target(name: "Resilience", dependencies: ["CurlHTTP", "EmpireModel", "Basics"]),
        // The driver protocol: observe, a pure diff into priced actions, apply one action.
        .target(name: "DriverKit", dependencies: ["EmpireModel", "CurlHTTP", "Resilience", "Basics"]),
        // The plan and its file form: `plan --out` writes it, `apply PLAN.json` reads and verifies it.
        .target(name: "PlanFile", dependencies: ["DriverKit", "EmpireModel", .product(name: "Crypto", package: "swift-crypto")]),
        // Push webhooks: GitHub HMAC signatures, delivery replay, GitLab tokens, the pushed ref.
        .target(name: "Webhooks", dependencies: ["DriverKit", .product(name: "Crypto", package: "swift-crypto")]),
        // Events to Slack, Discord, Teams, signed webhooks, Alertmanager, and commit statuses on GitHub and GitLab.
        .target(
            name: "Notifications",
            dependencies: ["EmpireModel", "CurlHTTP", "Resilience", "DriverKit", "Basics", .product(name: "Crypto", package: "swift-crypto")]
        ),
        // observe → diff → plan → apply: state store, intent journal, quota planning, status files.
        .target(
            name: "Reconciler",
            dependencies: [
                "PlanFile", "DriverKit", "EmpireModel", "GitKit", "YAMLKit", "Resilience", "CurlHTTP",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // One target per integration; drivers never import each other.
        .target(name: "YouTubeDriver", dependencies: ["DriverKit", "EmpireModel", "CurlHTTP", "Basics", .product(name: "Crypto", package: "swift-crypto")],
                path: "Sources/Drivers/YouTube"),
        .target(
            name: "ConfigStoreDriver",
            dependencies: [
                "DriverKit", "EmpireModel", "Basics",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Drivers/ConfigStore"
        ),
        // Schedule → n8n workflows (templates, tags, activation).
        .target(name: "N8nDriver", dependencies: ["DriverKit", "EmpireModel", "CurlHTTP", "Basics", .product(name: "Crypto", package: "swift-crypto")],
                path: "Sources/Drivers/N8n"),
        // CDNZone → Cloudflare cache and configuration rules, zone settings, Workers and routes, R2 buckets.
        .target(name: "CloudflareDriver", dependencies: ["DriverKit", "EmpireModel", "CurlHTTP", "Basics", .product(name: "Crypto", package: "swift-crypto")],
                path: "Sources/Drivers/Cloudflare"),
        // SecurityPolicy → Vault ACL policies, key age, the audit device.
        .target(name: "VaultDriver", dependencies: ["DriverKit", "EmpireModel", "CurlHTTP", "Basics"], path: "Sources/Drivers/Vault"),
        // Monitor → the `ytempire` alerting-rule group of a Prometheus rule file.
        .target(name: "PrometheusDriver", dependencies: ["DriverKit", "EmpireModel", "CurlHTTP", "YAMLKit", "Basics"], path: "Sources/Drivers/Prometheus"),
        // Connection limits of an HTTP/1 listener (header, body and idle timeouts, a connection cap)
        // and the bind-first start signal, shared by the sandbox and `serve` (Hummingbird, NIO).
        .target(
            name: "ServerGuard",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ]
        ),
        // Local emulators of YouTube, n8n, Cloudflare and Vault (Hummingbird).
        .target(
            name: "Sandbox",
            dependencies: [
                "EmpireModel", "ServerGuard",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // One home for a reconcile run: configuration, state store, source, drivers, engine —
        // what the CLI commands and `serve` call (neither wires these itself).
        // The state store in PostgreSQL (`stateStore:`): shared by several instances, an advisory writer lock, fenced journal writes.
        .target(
            name: "PostgresState",
            dependencies: [
                "Reconciler", "DriverKit", "EmpireModel", "Resilience", "ConfigStoreDriver",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Workspace",
            dependencies: [
                "EmpireModel", "GitKit", "Reconciler", "PlanFile", "DriverKit", "CurlHTTP", "Resilience", "Basics", "YAMLKit", "Notifications",
                "PostgresState",
                "YouTubeDriver", "ConfigStoreDriver", "N8nDriver", "CloudflareDriver", "VaultDriver", "PrometheusDriver",
            ]
        ),
        // `serve`: the reconcile loop, webhooks, /metrics, the status page (Hummingbird, swift-metrics, swift-prometheus).
        .target(
            name: "Service",
            dependencies: [
                "Webhooks", "Workspace", "Reconciler", "DriverKit", "EmpireModel", "Resilience", "ServerGuard", "Basics", "Notifications",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .target(
            name: "YTEmpireCLI",
            dependencies: [
                "EmpireModel",
                "GitKit",
                "Sandbox",
                "DriverKit",
                "Reconciler",
                "Workspace",
                "Service",
                "Basics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ]
        ),
        .executableTarget(name: "ytempire", dependencies: ["YTEmpireCLI"]),

        // Shared test helpers: a scriptable HTTP server on 127.0.0.1, temporary git repositories, processes.
        .target(
            name: "TestSupport",
            dependencies: [
                "DriverKit",
                "EmpireModel",
                "GitKit",
                "Basics",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/TestSupport"
        ),

        .testTarget(name: "BasicsTests", dependencies: ["Basics"]),
        .testTarget(name: "YAMLKitTests", dependencies: ["YAMLKit"]),
        .testTarget(
            name: "EmpireModelTests",
            dependencies: ["EmpireModel", "YAMLKit", "Workspace", "TestSupport", "Sandbox", "Basics"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "GitKitTests", dependencies: ["GitKit", "TestSupport", "Basics"]),
        .testTarget(name: "CurlHTTPTests", dependencies: ["CurlHTTP", "TestSupport", "Basics"]),
        .testTarget(name: "ResilienceTests", dependencies: ["Resilience", "CurlHTTP", "EmpireModel", "TestSupport"]),
        .testTarget(name: "SandboxTests", dependencies: ["Sandbox", "EmpireModel", "TestSupport"]),
        .testTarget(name: "StateStoreTests", dependencies: ["Reconciler", "PostgresState", "DriverKit", "EmpireModel", "Resilience", "TestSupport"]),
        .testTarget(name: "ReconcilerTests", dependencies: ["Reconciler", "DriverKit", "EmpireModel", "YAMLKit", "Resilience", "CurlHTTP", "TestSupport"]),
        .testTarget(name: "YouTubeDriverTests", dependencies: ["YouTubeDriver", "DriverKit", "EmpireModel", "CurlHTTP", "Resilience", "Sandbox", "TestSupport"]),
        .testTarget(name: "ConfigStoreDriverTests", dependencies: ["ConfigStoreDriver", "DriverKit", "EmpireModel", "CurlHTTP", "TestSupport"]),
        .testTarget(name: "N8nDriverTests", dependencies: ["N8nDriver", "DriverKit", "EmpireModel", "CurlHTTP", "Resilience", "Sandbox", "TestSupport", "Reconciler"]),
        .testTarget(name: "CloudflareDriverTests", dependencies: ["CloudflareDriver", "DriverKit", "EmpireModel", "CurlHTTP", "Resilience", "Reconciler", "Sandbox", "TestSupport"]),
        .testTarget(name: "VaultDriverTests", dependencies: ["VaultDriver", "Reconciler", "DriverKit", "EmpireModel", "CurlHTTP", "Resilience", "Sandbox", "TestSupport"]),
        .testTarget(name: "PrometheusDriverTests", dependencies: ["PrometheusDriver", "DriverKit", "EmpireModel", "CurlHTTP", "Resilience", "YAMLKit", "Reconciler", "TestSupport"]),
        .testTarget(name: "NotificationsTests", dependencies: ["Notifications", "EmpireModel", "YAMLKit", "CurlHTTP", "Resilience", "TestSupport"]),
        .testTarget(name: "ServiceTests", dependencies: ["Service", "Reconciler", "DriverKit", "EmpireModel", "TestSupport"]),
        // End-to-end: the built binary against the sandbox, real git, SQLite and PostgreSQL.
        .testTarget(name: "EndToEndTests", dependencies: ["Sandbox", "EmpireModel", "TestSupport", "YAMLKit", "Service", "PostgresState", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Crypto", package: "swift-crypto")]),
    ],
    swiftLanguageModes: [.v6]
)
