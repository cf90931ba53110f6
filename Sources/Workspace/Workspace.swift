import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import GitKit
import Notifications
import PostgresState
import Reconciler
import Resilience
import Synchronization

/// One home for a reconcile run: the loaded configuration, the locked state directory and its
/// store, one long-lived source, the drivers and the engine. `plan`, `apply`, `status` and
/// `serve` all go through it; none of them wires these pieces on its own.
public final class Workspace: Sendable {
  public let config: ReconcilerConfig
  /// Warnings of the configuration (errors stop `open`).
  public let warnings: [Diagnostic]
  /// Held by plan, apply and serve on SQLite; on a shared PostgreSQL store only by the writers
  /// (apply, serve, import). `status` only reads and takes none.
  let lock: StateDirectoryLock?
  /// SQLite in `stateDir`, or the shared PostgreSQL store of `stateStore:` (its writers hold
  /// its advisory lock).
  public let store: any StateStore
  let resolver: SecretResolver
  let transport: CurlHTTPClient
  public let clock: any ResilienceClock
  let environment: [String: String]
  /// This machine's name, recorded with each audit entry.
  public let hostName: String
  /// Git sources by ref ("" for the configured one), made once per workspace.
  let gitSources = Mutex<[String: GitSource]>([:])
  /// Events and commit statuses to the configured sinks (`notifications:`).
  public let notifier: Notifier

  public static let defaultConfigPath = "ytempire.yaml"

  /// Loads the configuration at `configPath` (default ./ytempire.yaml) and, with `lock`,
  /// takes its state's writer lock: the state directory's on SQLite; on a shared PostgreSQL
  /// store the advisory lock, and only when `writer` (a plan reads the shared state and saves
  /// the observations it paid for, never waiting for the service). `sharing`: a workspace of
  /// the same state whose store and locks this one takes over (serve's reload).
  public init(
    configPath: String?, lock takeLock: Bool = true, writer: Bool = true, sharing previous: Workspace? = nil,
    clock: any ResilienceClock = SystemClock(),
    environment: [String: String] = ProcessInfo.processInfo.environment,
    hostName: String = AuditActor.localHost(),
    log: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) }
  ) throws(WorkspaceError) {
    let path = configPath ?? Self.defaultConfigPath
    guard FileManager.default.fileExists(atPath: path) else {
      throw WorkspaceError(
        .configMissing,
        configPath == nil
          ? "no ytempire.yaml in the current directory; pass --config FILE (see examples/ytempire.yaml, or `ytempire sandbox --write-config ytempire.yaml`)"
          : "\(path): no such file")
    }
    let (config, diags) = ReconcilerConfigLoader.load(path: path, environment: environment)
    guard let config else {
      throw WorkspaceError(.configInvalid, "\(path): the configuration has errors", diagnostics: diags)
    }
    self.config = config
    warnings = diags
    self.clock = clock
    self.environment = environment
    self.hostName = hostName
    resolver = SecretResolver(environment: environment)
    if let previous, previous.config.stateDir == config.stateDir, previous.config.stateStore == config.stateStore {
      lock = previous.lock
      store = previous.store
    } else if let shared = config.stateStore {
      (lock, store) = try Self.openShared(
        shared, config: config, writer: takeLock && writer, resolver: resolver, hostName: hostName,
        now: clock.wallNow)
    } else {
      do {
        lock = takeLock ? try StateDirectoryLock(stateDir: config.stateDir) : nil
        store = try SQLiteStateStore(stateDir: config.stateDir)
      } catch {
        throw WorkspaceError(.stateDirectory, "stateDir \(config.stateDir): \(error)")
      }
    }
    transport = CurlHTTPClient(configuration: CurlHTTPConfiguration(deadlines: config.deadlines))
    notifier = Self.makeNotifier(config: config, store: store, resolver: resolver, transport: transport, clock: clock, log: log)
  }

  deinit {
    notifier.shutdown()
    transport.shutdown()
  }

  /// A secret reference of the configuration, resolved only when a driver uses it.
  public func secret(_ ref: SecretRef) -> LazySecret {
    let r = resolver
    return LazySecret(name: ref.path) {
      do { return try r.resolve(ref) } catch { throw SecretUnavailable(name: ref.path, reason: "\(error)") }
    }
  }

  // MARK: revisions

  /// Reads the desired state: the working copy at `path` when given, else the configured
  /// source (at `ref` instead of the configured ref when given). An unreachable source
  /// answers from its last good revision with `sourceWarning` set; a rewritten history is
  /// refused (`historyRewritten`) unless `allowRewrite`.
  public func load(path: String? = nil, ref: String? = nil) async throws(WorkspaceError) -> LoadedRevision {
    if let path { return try loadDirectory(path) }
    let src = config.source
    if src.isLocalPath && !Self.isGitRepository(src.url) { return try loadDirectory(src.url, subpath: src.path) }
    return try await loadGit(ref: ref)
  }

  // MARK: engine

  /// What one run plans: `--target`, `--refresh`, and `--force` for the sync windows.
  public struct RunOptions: Sendable {
    public var targets: [ResourceID] = []
    public var refresh: RefreshMode = .changed
    public var ignoreSyncWindows = false
    /// `--force`: delete owned objects that still hold content (a playlist's videos).
    public var deleteNonEmpty = false
    /// Who applies, for the audit log: `apply` (the CLI) or `serve`.
    public var actor: AuditActor.Role = .apply
    public init(
      targets: [ResourceID] = [], refresh: RefreshMode = .changed, ignoreSyncWindows: Bool = false, deleteNonEmpty: Bool = false,
      actor: AuditActor.Role = .apply
    ) {
      self.targets = targets
      self.refresh = refresh
      self.ignoreSyncWindows = ignoreSyncWindows
      self.deleteNonEmpty = deleteNonEmpty
      self.actor = actor
    }
  }

  /// The engine of one run, with the drivers the configuration enables.
  public func engine(_ run: RunOptions = RunOptions(), log: @escaping @Sendable (String) -> Void = { _ in }) throws(WorkspaceError)
    -> Engine
  {
    var o = EngineOptions()
    let p = config.policy
    o.prune = p.prune
    o.maxDeletePercent = p.maxDeletePercent
    o.maxUpdatePercent = p.maxUpdatePercent
    o.minExisting = p.minExisting
    o.observeMaxAge = p.observeMaxAge.swiftDuration
    o.unknownOutcomeWait = p.unknownOutcomeWait.swiftDuration
    o.syncWindows = SyncWindows(p.syncWindows)
    o.targets = run.targets
    o.refresh = run.refresh
    o.ignoreSyncWindows = run.ignoreSyncWindows
    o.deleteNonEmpty = run.deleteNonEmpty
    o.actor = AuditActor(role: run.actor, host: hostName)
    o.apply(config.deadlines)
    let (drivers, missing) = try drivers()
    return Engine(drivers: drivers, store: store, transport: transport, unconfigured: missing, options: o, clock: clock, log: log)
  }

  // MARK: plan

  /// Plans `loaded` with `engine`, the plan sealed with this state's key.
  public func plan(_ loaded: LoadedRevision, engine: Engine) async throws -> Plan {
    try await engine.plan(loaded.resources, revision: loaded.revision, files: loaded.files)
  }

  /// Reads a plan file written by `plan --out` against this state directory, and checks it
  /// still holds: same revision, its key, the observed state unmoved.
  public func readPlan(file: String, loaded: LoadedRevision, engine: Engine) async throws(WorkspaceError) -> Plan {
    let plan: Plan
    do {
      plan = try Plan.read(path: file, key: store.planKey())
    } catch let e as PlanError {
      throw WorkspaceError(.planFile, e.message)
    } catch {
      throw WorkspaceError(.planFile, "\(file): \(error)")
    }
    guard loaded.revision == plan.revision else {
      throw WorkspaceError(
        .planFile, "plan is stale: it was made for \(plan.revision), the source is now at \(loaded.revision); run plan again")
    }
    do {
      try await engine.checkPlan(plan, desired: loaded.resources, files: loaded.files)
    } catch {
      throw WorkspaceError(.planFile, "\(error)")
    }
    return plan
  }

  // MARK: apply

  /// Applies a plan, records every resource's status and publishes the status files: the one
  /// path `apply` and `serve` share after planning.
  public func converge(
    _ plan: Plan, loaded: LoadedRevision, engine: Engine, force: Bool,
    shouldStop: @escaping @Sendable () -> Bool = { false },
    onEvent: @escaping @Sendable (ApplyEvent) -> Void = { _ in }
  ) async throws -> (report: ApplyReport, status: String) {
    reportApplying(plan, loaded: loaded)
    let report = try await engine.apply(
      plan, desired: loaded.resources, files: loaded.files, force: force,
      shouldStop: shouldStop, onEvent: onEvent)
    reportApplied(plan, report: report, loaded: loaded, actor: engine.options.actor.role)
    // What reached the systems is what a force-push is judged against from now on.
    if let commit = loaded.commit, loaded.followsConfiguredRef { try remember(.sourceLastApplied, commit) }
    try StatusBook.record(plan: plan, report: report, desired: loaded.resources, store: store, now: clock.wallNow)
    let status = try await publishStatus(loaded)
    return (report, status)
  }

  // MARK: status

  /// Renders the status files, writes them to `<stateDir>/status/` and commits them on the
  /// status branch (into a local source repository itself; pushed to a remote one when
  /// `status.push` is set). Returns where they went, for people.
  public func publishStatus(_ loaded: LoadedRevision) async throws -> String {
    let quotas = try StatusBook.quotas(desired: loaded.resources, store: store, clock: clock)
    let files = try StatusBook.files(store: store, quotas: quotas)
    try StatusBook.writeDirectory(files, stateDir: config.stateDir)
    guard let git = loaded.git else { return "status written to \(config.stateDir)/status/" }
    let push = loaded.isLocalRepository || config.status.push
    do {
      let r = try await git.writeStatus(files, branch: config.status.branch, push: push)
      let place =
        push ? "\(config.status.branch) of \(git.mirror.displayURL)" : "\(config.status.branch) in the mirror (status.push is off)"
      let commit = String((r.commit ?? "").prefix(12))
      if r.committed { return "status committed on \(place) (\(commit))" }
      return r.pushed ? "status published on \(place) (\(commit), unchanged)" : "status unchanged on \(place)"
    } catch {
      return "status written to \(config.stateDir)/status/; committing it failed: \(error.message) [\(error.code.rawValue)]"
    }
  }

  /// The audit log's last `limit` entries at or after `since`, how many there are since then, and its head.
  public func audit(since: Date?, last limit: Int) throws -> (entries: [AuditEntry], total: Int, head: AuditHead) {
    let (entries, total) = try store.auditEntries(since: since.map(AuditLog.time), last: limit)
    return (entries, total, try store.auditHead())
  }

  /// Recomputes the audit chain: its head, or an `AuditLog.Failure` naming the first bad entry.
  public func verifyAudit() throws -> AuditHead { try store.verifyAudit() }

  /// The status of every resource and the run-wide revisions, as the last apply left them.
  public func status() throws -> (lastApplied: String?, lastAttempted: String?, resources: [ResourceStatusRecord]) {
    (try store.meta(.lastAppliedRevision), try store.meta(.lastAttemptedRevision), try store.allStatus())
  }
}
