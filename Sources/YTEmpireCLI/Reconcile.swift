import ArgumentParser
import CloudflareDriver
import ConfigStoreDriver
import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import GitKit
import N8nDriver
import PrometheusDriver
import Reconciler
import Resilience
import Synchronization
import VaultDriver
import YouTubeDriver

/// A failure the CLI reports as one line and exit 1 (diagnostics were already printed).
struct CLIFailure: Error, CustomStringConvertible {
    var message: String
    init(_ m: String) { message = m }
    var description: String { message }
}

/// Runs async work from a synchronous `ParsableCommand.run()`.
func runBlocking(_ body: @escaping @Sendable () async throws -> Void) throws {
    let outcome = Mutex<(any Error)?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
        do { try await body() } catch { outcome.withLock { $0 = error } }
        done.signal()
    }
    done.wait()
    if let error = outcome.withLock({ $0 }) {
        if error is ExitCode { throw error }
        Terminal.write("error: \(error)\n", to: .standardError)
        throw ExitCode(1)
    }
}

/// The desired state of one revision, wherever it came from.
struct LoadedRevision: Sendable {
    var revision: String
    var resources: [Resource]
    /// The git source, when the revision is a commit (status is committed there).
    var git: GitSource?
    var isLocalRepository: Bool
    /// The revision's non-manifest files (workflow JSON, worker scripts) for the drivers.
    var files: RepositoryFiles = .none
    /// The source could not be reached or refused the new revision: why (the last good revision is used).
    var sourceWarning: String?
}

/// Everything `plan`, `apply` and `status` share: the configuration, the locked state
/// directory, the state store, the source, the drivers and the engine.
final class Reconcile: Sendable {
    let config: ReconcilerConfig
    /// Held by plan and apply; `status` only reads and takes none.
    let lock: StateDirectoryLock?
    let store: SQLiteStateStore
    let resolver: SecretResolver
    let transport: CurlHTTPClient

    static let defaultConfigPath = "ytempire.yaml"

    /// Loads `--config` (diagnostics to stderr; exit 1 on errors) and locks its state directory.
    init(configPath: String?, lock takeLock: Bool = true) throws {
        let path = configPath ?? Self.defaultConfigPath
        guard FileManager.default.fileExists(atPath: path) else {
            throw CLIFailure(configPath == nil
                ? "no ytempire.yaml in the current directory; pass --config FILE (see examples/ytempire.yaml, or `ytempire sandbox --write-config ytempire.yaml`)"
                : "\(path): no such file")
        }
        let (config, diags) = ReconcilerConfigLoader.load(path: path)
        let color = Terminal.useColor(STDERR_FILENO)
        var err = ""
        for d in diags { err += Terminal.render(d, color: color) + "\n" }
        Terminal.write(err, to: .standardError)
        guard let config else { throw ExitCode(1) }
        self.config = config
        lock = takeLock ? try StateDirectoryLock(stateDir: config.stateDir) : nil
        store = try SQLiteStateStore(stateDir: config.stateDir)
        resolver = SecretResolver()
        transport = CurlHTTPClient(configuration: CurlHTTPConfiguration(deadlines: config.deadlines))
    }

    deinit { transport.shutdown() }

    func secret(_ ref: SecretRef) -> LazySecret {
        let r = resolver
        return LazySecret(name: ref.path) {
            do { return try r.resolve(ref) } catch { throw SecretUnavailable(name: ref.path, reason: "\(error)") }
        }
    }

    // MARK: source

    static func isGitRepository(_ path: String) -> Bool {
        let fm = FileManager.default
        return fm.fileExists(atPath: path + "/.git") || (fm.fileExists(atPath: path + "/HEAD") && fm.fileExists(atPath: path + "/objects"))
    }

    /// Reads the desired state: the working copy at `path` when given, else the configured source.
    func load(path: String?, ref: String?) async throws -> LoadedRevision {
        if let path { return try loadDirectory(path) }
        let src = config.source
        if src.isLocalPath && !Self.isGitRepository(src.url) { return try loadDirectory(src.url, subpath: src.path) }
        var auth = GitAuth.none
        if let t = src.auth.token { auth = .token(try secret(t).resolve()) }
        if let k = src.auth.sshKey {
            // The key is a file path reference or its content; GitKit takes a key file.
            let ref = k
            if case .file(let f) = ref.source { auth = .sshKey(privateKey: f, knownHosts: src.auth.knownHosts) }
            else { throw CLIFailure("source.auth.sshKey must be a {file: PATH} reference to the private key file") }
        }
        let cfg = GitSourceConfig(url: src.url, ref: ref ?? src.ref, path: src.path, stateDir: config.stateDir, auth: auth,
                                  timeouts: GitTimeouts(connect: src.timeouts.connect.swiftDuration, transfer: src.timeouts.transfer.swiftDuration),
                                  verify: SignatureVerification(mode: src.verify.mode == .head ? .head : .off,
                                                                allowedSigners: src.verify.allowedSigners, gpgHome: src.verify.gpgHome),
                                  allowRewrite: src.allowRewrite,
                                  caFile: GitSourceConfig.caFile(configured: src.caFile, environment: ProcessInfo.processInfo.environment))
        let git: GitSource
        do { git = try GitSource(cfg) } catch { throw CLIFailure("source: \(error.message) [\(error.code.rawValue)]") }
        let lastApplied = try store.meta("lastAppliedCommit").map { Revision(name: nil, reference: nil, commit: $0) }
        let sync = await git.sync(lastApplied: lastApplied)
        var warning: String?
        if let e = sync.error {
            if sync.revision == nil { throw CLIFailure("source: \(e.message) [\(e.code.rawValue)]") }
            warning = "source: \(e.message) [\(e.code.rawValue)]; using the last good revision \(sync.revision!)"
            Terminal.write("warning: \(warning!)\n", to: .standardError)
        }
        guard let revision = sync.revision else { throw CLIFailure("source: no revision") }
        let tree: ManifestTree
        do { tree = try await git.manifests(at: revision) } catch { throw CLIFailure("source: \(error.message) [\(error.code.rawValue)]") }
        let report = tree.validate(emptyName: src.path == "." ? git.mirror.displayURL : src.path)
        try check(report, name: "\(git.mirror.displayURL) \(revision)")
        return LoadedRevision(revision: revision.description, resources: report.resources, git: git, isLocalRepository: src.isLocalPath,
                              files: RepositoryFiles { tree.readFile($0) }, sourceWarning: warning)
    }

    private func loadDirectory(_ root: String, subpath: String = ".") throws -> LoadedRevision {
        var dir = subpath == "." || subpath.isEmpty ? root : root + "/" + subpath
        if dir.count > 1 && dir.hasSuffix("/") { dir.removeLast() }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw CLIFailure("\(dir): not a directory")
        }
        let loaded = ManifestLoader.loadDirectory(dir)
        let report = loaded.report
        try check(report, name: dir)
        // dir@sha256 over the manifests' paths and bytes, in path order.
        var hashed: [UInt8] = []
        for s in loaded.sources.sorted(by: { $0.relativePath < $1.relativePath }) {
            hashed += Array(s.relativePath.utf8) + [0]
            switch s.content {
            case .bytes(let b): hashed += b
            case .file(let p): hashed += (FileManager.default.contents(atPath: p).map { Array($0) } ?? [])
            }
            hashed.append(0)
        }
        // … and over the files they may refer to (a changed worker script is a new revision).
        let manifests = Set(loaded.sources.map(\.relativePath))
        for rel in loaded.files.sorted() where !manifests.contains(rel) {
            hashed += Array(rel.utf8) + [0] + (loaded.readFile(rel) ?? []) + [0]
        }
        return LoadedRevision(revision: "dir@sha256:" + sha256Hex(hashed), resources: report.resources, git: nil, isLocalRepository: false,
                              files: RepositoryFiles { loaded.readFile($0) })
    }

    private func check(_ report: ValidationReport, name: String) throws {
        let color = Terminal.useColor(STDERR_FILENO)
        var err = ""
        for d in report.diagnostics { err += Terminal.render(d, color: color) + "\n" }
        if report.omitted > 0 { err += "… and \(report.omitted) more diagnostics not shown\n" }
        Terminal.write(err, to: .standardError)
        if !report.isValid {
            Terminal.write(ValidationRun.summary(report, path: name) + " — nothing is planned until it validates (Stalled)\n", to: .standardError)
            throw ExitCode(1)
        }
    }

    // MARK: drivers and engine

    /// The drivers the configuration enables, and what it leaves unreconciled.
    func drivers() throws -> ([any Driver], [UnconfiguredIntegration]) {
        var drivers: [any Driver] = []
        var missing: [UnconfiguredIntegration] = []
        let i = config.integrations
        if let y = i.youtube {
            let secrets = config.secrets
            let me = self
            drivers.append(YouTubeDriver(config: YouTubeDriverConfig(
                endpoint: y.endpoint, tokenEndpoint: y.tokenEndpoint, clientId: secret(y.clientId), clientSecret: secret(y.clientSecret),
                credentials: { name in secrets[name].map { me.secret($0) } })))
        } else {
            missing.append(.init(name: "youtube", kinds: [.channel], reason: "no integrations.youtube entry in the configuration"))
        }
        // The runtime config store defaults to a SQLite file in the state directory.
        let url = i.configStore?.url ?? "sqlite://\(config.stateDir)/runtime.sqlite"
        do {
            drivers.append(try ConfigStoreDriver(url: url, password: i.configStore?.password.map { secret($0) }))
        } catch {
            throw CLIFailure("integrations.configStore: \(error)")
        }
        if let n = i.n8n {
            drivers.append(N8nDriver(config: N8nDriverConfig(endpoint: n.endpoint, apiKey: secret(n.apiKey), credential: n.credential,
                                                             configStoreIsPostgres: url.hasPrefix("postgres://") || url.hasPrefix("postgresql://"))))
        } else {
            missing.append(.init(name: "n8n", kinds: [.schedule], reason: "no integrations.n8n entry in the configuration"))
        }
        if let c = i.cloudflare {
            drivers.append(CloudflareDriver(config: CloudflareDriverConfig(endpoint: c.endpoint, token: secret(c.token), accountId: c.accountId)))
        } else {
            missing.append(.init(name: "cloudflare", kinds: [.cdnZone], reason: "no integrations.cloudflare entry in the configuration"))
        }
        if let v = i.vault {
            drivers.append(VaultDriver(config: VaultDriverConfig(endpoint: v.endpoint, token: secret(v.token),
                                                                 auditFilePath: v.auditFilePath ?? VaultDriverConfig.defaultAuditFilePath)))
        } else {
            missing.append(.init(name: "vault", kinds: [.securityPolicy], reason: "no integrations.vault entry in the configuration"))
        }
        if let p = i.prometheus {
            drivers.append(PrometheusDriver(config: PrometheusDriverConfig(endpoint: p.endpoint, rulesFile: p.rulesFile, promtool: p.promtool)))
        } else {
            missing.append(.init(name: "prometheus", kinds: [.monitor], reason: "no integrations.prometheus entry in the configuration"))
        }
        return (drivers, missing)
    }

    func engine(_ configure: (inout EngineOptions) -> Void) throws -> Engine {
        var o = EngineOptions()
        let p = config.policy
        o.prune = p.prune
        o.maxDeletePercent = p.maxDeletePercent
        o.maxUpdatePercent = p.maxUpdatePercent
        o.minExisting = p.minExisting
        o.observeMaxAge = p.observeMaxAge.swiftDuration
        o.syncWindows = SyncWindows(p.syncWindows)
        o.apply(config.deadlines)
        configure(&o)
        let (drivers, missing) = try drivers()
        return Engine(drivers: drivers, store: store, transport: transport, unconfigured: missing, options: o)
    }

    // MARK: apply

    /// Applies a plan, records every resource's status and publishes the status files: the one
    /// path `apply` and `serve` share after planning.
    func converge(_ plan: Plan, loaded: LoadedRevision, engine: Engine, force: Bool,
                  shouldStop: @escaping @Sendable () -> Bool = { false },
                  onEvent: @escaping @Sendable (ApplyEvent) -> Void = { _ in }) async throws -> (ApplyReport, String) {
        let report = try await engine.apply(plan, desired: loaded.resources, files: loaded.files, force: force,
                                            shouldStop: shouldStop, onEvent: onEvent)
        try StatusBook.record(plan: plan, report: report, desired: loaded.resources, store: store, now: Date())
        let status = try await publishStatus(loaded)
        return (report, status)
    }

    // MARK: status

    /// Renders the status files, writes them to `<stateDir>/status/` and commits them on the
    /// status branch (into a local source repository itself; pushed to a remote one when
    /// `status.push` is set).
    func publishStatus(_ loaded: LoadedRevision) async throws -> String {
        let quotas = try StatusBook.quotas(desired: loaded.resources, store: store)
        let files = try StatusBook.files(store: store, quotas: quotas)
        try StatusBook.writeDirectory(files, stateDir: config.stateDir)
        guard let git = loaded.git else { return "status written to \(config.stateDir)/status/" }
        let push = loaded.isLocalRepository || config.status.push
        do {
            let r = try await git.writeStatus(files, branch: config.status.branch, push: push)
            let where_ = push ? "\(config.status.branch) of \(git.mirror.displayURL)" : "\(config.status.branch) in the mirror (status.push is off)"
            let commit = String((r.commit ?? "").prefix(12))
            if r.committed { return "status committed on \(where_) (\(commit))" }
            return r.pushed ? "status published on \(where_) (\(commit), unchanged)" : "status unchanged on \(where_)"
        } catch {
            return "status written to \(config.stateDir)/status/; committing it failed: \(error.message) [\(error.code.rawValue)]"
        }
    }
}


enum RefreshOption: String, ExpressibleByArgument, CaseIterable {
    case all, changed, none
    var mode: RefreshMode { RefreshMode(rawValue: rawValue)! }
}

/// `--target KIND/NAME`.
func parseTargets(_ raw: [String]) throws -> [ResourceID] {
    try raw.map { s in
        guard let id = ResourceID(parsing: s) else {
            throw ValidationError("--target \(s): expected KIND/NAME, e.g. Channel/tech-daily (kinds: \(Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        return id
    }
}
