import Basics
import DriverKit
import EmpireModel
import Foundation
import Hummingbird
import Logging
import Reconciler
import ServerGuard
import ServiceLifecycle
import Synchronization
import Workspace

/// A setting of `serve` that cannot be used.
public struct ServeError: Error, Sendable, CustomStringConvertible {
  public var message: String
  public init(_ m: String) { message = m }
  public var description: String { message }
}

/// What the status page, /readyz and the logs know about the service.
struct ServeState: Sendable {
  var revision: String?
  var lastSourceError: String?
  var sourceReached = false
  var lastReconcile: Date?
  var lastResult: String?
  var lastApplied: Date?
  var lastDrift: Date?
  var driftNote: String?
}

/// `ytempire serve`: the reconcile loop over one workspace (the same engine path as `apply`),
/// the drift checks, and the HTTP endpoints.
public final class ServeRuntime: Sendable {
  let configPath: String?
  let listenOverride: String?
  let logger: Logger
  let reconcile: Shared<Workspace>
  let state = Shared(ServeState())
  let metrics = ServiceMetrics()
  let gate: Shared<WebhookGate>
  let loop: ReconcileLoop
  let format: LineLogHandler.Format
  /// Leader or standby (always leader on SQLite).
  let leadership: Shared<Leadership>
  /// A reconcile is running (a deposed leader campaigns again only once it has ended).
  let cycling = Shared(false)

  /// `configPath`: ytempire.yaml (nil: ./ytempire.yaml); `listen`: HOST:PORT instead of serve.listen.
  public init(configPath: String?, listen: String?, logFormat format: LineLogHandler.Format) throws {
    self.configPath = configPath
    listenOverride = listen
    self.format = format
    var log = Logger(label: "ytempire") { LineLogHandler(label: $0, format: format) }
    log.logLevel = .info
    logger = log
    // Takes the state directory's lock: a second serve (or apply) on it refuses to start.
    let notifyLog = log
    // SQLite: the state directory's lock (this instance is the only writer). A shared store:
    // no lock yet; the election takes it (`campaign`).
    let r = try Workspace(configPath: configPath, writer: false, log: { notifyLog.warning("\($0)") })
    leadership = Shared(r.electsLeader ? .standby(leader: nil, reason: "not elected yet") : .leader(epoch: nil))
    for d in r.warnings { log.warning("\(d.file):\(d.line):\(d.column): \(d.severity.rawValue): \(d.message)") }
    reconcile = Shared(r)
    gate = Shared(try Self.gate(r))
    let rec = reconcile
    loop = ReconcileLoop(interval: { rec.withLock { $0.config.source.interval?.swiftDuration } })
    drift = Shared(DriftPlanner(interval: r.config.serve.driftInterval.swiftDuration, share: r.config.serve.driftBudget))
    // A restart (or, with a shared store, a new leader) goes on from the drift budget spent so far.
    loadDriftMemory(from: r)
  }

  static func gate(_ r: Workspace) throws -> WebhookGate {
    let w = r.config.serve.webhooks
    let gh = try w.githubSecret.map { Array(try r.secret($0).resolve().utf8) }
    let gl = try w.gitlabToken.map { Array(try r.secret($0).resolve().utf8) }
    return WebhookGate(githubSecret: gh, gitlabToken: gl, ref: r.config.source.ref)
  }

  var current: Workspace { reconcile.withLock { $0 } }

  /// HOST:PORT or [IPv6]:PORT; a port alone listens on 127.0.0.1. Port 0: any free port.
  static func parseListen(_ s: String) throws -> (String, Int) {
    let text = !s.isEmpty && s.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) ? "127.0.0.1:" + s : s
    do throws(HostPort.ParseError) {
      let hp = try HostPort.parse(text, allowingPortZero: true)
      return (hp.host, hp.port)
    } catch {
      throw ServeError("serve.listen \(s): expected HOST:PORT with a port from 0 to 65535 (\(error))")
    }
  }

  public func run() async throws {
    let (host, port) = try Self.parseListen(listenOverride ?? current.config.serve.listen)
    var endpoints = ServiceEndpoints(
      readiness: { [state, leadership] in
        // A standby is ready: it takes over when the leader ends.
        if !leadership.withLock({ $0.isLeader }) { return nil }
        let s = state.withLock { $0 }
        return s.sourceReached ? nil : "the source has not been reached yet" + (s.lastSourceError.map { " (\($0))" } ?? "")
      },
      snapshot: { [self] in snapshot() },
      metrics: metrics,
      gate: { [gate] in gate.withLock { $0 } },
      onPush: { [self] why in
        if !handToLeader(HandedEvent(kind: .push, reason: why, pullRequest: nil)) { loop.trigger(.webhook(why)) }
      },
      onPullRequest: { [self] pr in
        if !handToLeader(HandedEvent(kind: .pullRequest, reason: nil, pullRequest: .init(pr))) { planPullRequest(pr) }
      },
      // A scrape publishes the quotas as the last reconcile or drift check left them: only
      // they spend quota, and they refresh the gauges (no ledgers are built per scrape).
      beforeMetrics: { [self] in
        metrics.quotas(lastQuotas.withLock { $0 })
        metrics.notifications(current.notifier.counts)
      })
    endpoints.role = { [self] in current.electsLeader ? leadership.withLock { $0.description } : nil }
    let log = logger
    let format = self.format
    // Bound first: the loop starts once the listener is up, and a taken address ends serve at once.
    let listener = ServeListener(
      router: ServiceHTTP.router(endpoints, logger: logger), host: host, port: port,
      logger: Logger(label: "ytempire.http") { LineLogHandler(label: $0, format: format) }.withLevel(.warning),
      onListening: { address in log.info("listening", metadata: ["address": .string(address)]) })
    let loopService = LoopService(runtime: self, listening: listener.started)
    let hup = installSIGHUP()
    defer { hup.cancel() }
    let group = ServiceGroup(
      configuration: .init(
        services: [.init(service: loopService), .init(service: listener)],
        gracefulShutdownSignals: [.sigterm, .sigint], logger: logger.withLevel(.warning)))
    logger.info("serve started", metadata: ["stateDir": .string(current.config.stateDir), "pid": .stringConvertible(getpid())])
    try await group.run()
    logger.info("serve stopped")
  }

  /// SIGHUP: reload ytempire.yaml; a bad file is reported and the old configuration kept.
  func installSIGHUP() -> any DispatchSourceSignal {
    signal(SIGHUP, SIG_IGN)
    let src = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
    src.setEventHandler { [self] in reload() }
    src.resume()
    return src
  }

  func reload() {
    let old = current
    do {
      let notifyLog = logger
      let next = try Workspace(configPath: configPath, lock: false, sharing: old, log: { notifyLog.warning("\($0)") })
      guard next.config.stateDir == old.config.stateDir, next.config.stateStore == old.config.stateStore else {
        logger.error(
          "configuration not reloaded: stateDir and stateStore cannot change while serving",
          metadata: ["stateDir": .string(next.config.stateDir)])
        return
      }
      let g = try Self.gate(next)
      reconcile.withLock { $0 = next }
      gate.withLock { $0 = g }
      logger.info("configuration reloaded", metadata: ["file": .string(next.config.file)])
      loop.trigger(.reload)
    } catch let e as WorkspaceError {
      let why = ([e.message] + e.diagnostics.map { "\($0.file):\($0.line):\($0.column): \($0.severity.rawValue): \($0.message)" }).joined(
        separator: "; ")
      logger.error("configuration not reloaded; the old one stays in use", metadata: ["error": .string(why)])
    } catch {
      logger.error("configuration not reloaded; the old one stays in use", metadata: ["error": .string("\(error)")])
    }
  }

  func snapshot() -> StatusSnapshot {
    let r = current
    let s = state.withLock { $0 }
    let records = (try? r.store.allStatus()) ?? []
    let quotas = lastQuotas.withLock { $0 }
    var snap = StatusSnapshot(
      resources: records, quotas: quotas, revision: s.revision, lastSourceError: s.lastSourceError,
      lastReconcile: s.lastReconcile, lastResult: s.lastResult, driftNote: s.driftNote)
    if r.electsLeader { snap.role = leadership.withLock { $0.description } }
    return snap
  }

  let lastDesired = Shared<[Resource]>([])
  let lastQuotas = Shared<[StatusBook.QuotaState]>([])
  let drift: Shared<DriftPlanner>
  /// The resources the next drift check observes again.
  let driftBatch = Shared<[ResourceID]>([])

  /// The quotas as the state store has them now (the gauges are refreshed on the way).
  func driftQuotas() -> [DriftPlanner.Quota] {
    refreshQuotaGauges().map { DriftPlanner.Quota(rateLimit: $0.rateLimit, units: $0.units, resetsAt: $0.resetsAt) }
  }

  /// Schedules drift checks: waits a period, picks the next batch within the budget, triggers.
  func driftLoop() async {
    var wait = drift.withLock { $0.period(count: 1, quotas: []) }
    while !Task.isCancelled && !loop.isStopping {
      do { try await Task.sleep(for: wait) } catch { return }
      if Task.isCancelled || loop.isStopping { return }
      let resources = lastDesired.withLock { $0 }.map(ResourceID.init)
      guard !resources.isEmpty else {
        wait = .seconds(5)
        continue
      }
      let quotas = driftQuotas()
      let tick = drift.withLock { $0.next(resources: resources, quotas: quotas, now: Date()) }
      let note = tick.note
      let previous = state.withLock { s -> String? in
        let p = s.driftNote
        s.driftNote = note
        return p
      }
      if let note, note != previous { logger.warning("\(note)") }
      if !tick.batch.isEmpty {
        driftBatch.withLock { $0 = tick.batch }
        loop.trigger(.drift)
      }
      wait = tick.delay
    }
  }

  @discardableResult
  func refreshQuotaGauges() -> [StatusBook.QuotaState] {
    let desired = lastDesired.withLock { $0 }
    guard !desired.isEmpty, let q = try? StatusBook.quotas(desired: desired, store: current.store) else { return [] }
    lastQuotas.withLock { $0 = q }
    metrics.quotas(q)
    return q
  }

  /// Pull-request plans run one at a time, beside the reconcile loop (they only read the state).
  let pullRequests = PullRequestQueue()

  func planPullRequest(_ pr: PullRequestEvent) {
    let log = logger
    pullRequests.submit { [self] in
      let r = current
      let line = await r.planPullRequest(
        forge: pr.forge == .github ? .github : .gitlab, number: pr.number, head: pr.head, ref: pr.ref, fromFork: pr.fromFork)
      log.info("\(line)")
    }
  }

  // MARK: one reconcile

  func cycle(_ trigger: Trigger) async {
    let r = current
    // A standby applies nothing: the leader does (and the election triggers a reconcile when
    // this instance takes over).
    guard leadership.withLock({ $0.isLeader }) else { return }
    cycling.withLock { $0 = true }
    defer { cycling.withLock { $0 = false } }
    let started = Date()
    var log = logger
    log[metadataKey: "trigger"] = .string(trigger.description)
    let loaded: LoadedRevision
    do throws(WorkspaceError) {
      loaded = try await r.load()
    } catch {
      let message = error.code == .invalidRevision ? "\(error.message) (Stalled until the next commit)" : error.message
      if error.code == .invalidRevision || error.code == .historyRewritten { r.reportStalled(error, actor: .serve) }
      metrics.sourceError()
      state.withLock { s in
        s.lastSourceError = message
        s.lastReconcile = started
        s.lastResult = "source error"
      }
      log.error("reconcile skipped: \(message)")
      metrics.reconciled(seconds: Date().timeIntervalSince(started), plan: nil, report: nil, appliedAt: nil)
      return
    }
    log[metadataKey: "revision"] = .string(loaded.revision)
    r.reportLoaded()
    state.withLock { s in
      s.sourceReached = true
      s.revision = loaded.revision
      s.lastSourceError = loaded.sourceWarning
    }
    if loaded.sourceWarning != nil { metrics.sourceError() }
    lastDesired.withLock { $0 = loaded.resources }
    do {
      let isDrift = trigger == .drift
      let batch = isDrift ? driftBatch.withLock { $0 } : []
      if isDrift && batch.isEmpty { return }
      let engine = try r.engine(isDrift ? .init(targets: batch, refresh: .all, actor: .serve) : .init(actor: .serve))
      let plan = try await r.plan(loaded, engine: engine)
      if isDrift {
        // The plan already says what each quota is and what observing cost.
        let quotas = plan.quotas.compactMap { q in
          q.resetsAt.map { DriftPlanner.Quota(rateLimit: q.rateLimit, units: q.units, resetsAt: $0) }
        }
        var units: [String: Int] = [:]
        for q in plan.quotas { units[q.rateLimit] = q.observationUnits }
        let memory = drift.withLock { d in
          d.record(observed: plan.observation.observedNow, observationUnits: units, quotas: quotas)
          return d.memory
        }
        saveDriftMemory(memory, in: r)
        let drifted = plan.resources.filter { !$0.driftedFields.isEmpty }.map(\.id.description)
        log.info(
          "drift check",
          metadata: [
            "observed": .stringConvertible(plan.observation.observedNow),
            "units": .string(units.filter { $0.value > 0 }.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: ",")),
            "drifted": .string(drifted.joined(separator: ",")),
          ])
      }
      log.info(
        "planned", metadata: ["actions": .stringConvertible(plan.actions.count), "summary": .string(PlanRenderer.summaryLine(plan))])
      if !plan.safety.isEmpty {
        let why = plan.safety.map(\.message).joined(separator: "; ")
        state.withLock { s in
          s.lastReconcile = started
          s.lastResult = "refused by safety thresholds: \(why)"
        }
        log.error("apply refused by the safety thresholds: \(why)")
        metrics.reconciled(seconds: Date().timeIntervalSince(started), plan: plan, report: nil, appliedAt: nil)
        return
      }
      let loop = self.loop
      loop.enter(.applying)
      let actionLog = log
      let (report, status) = try await r.converge(
        plan, loaded: loaded, engine: engine, force: false,
        shouldStop: { loop.isStopping },
        onEvent: { e in
          guard case .finished(let o, _, _) = e else { return }
          var m: Logger.Metadata = [
            "resource": .string(o.action.resource.description), "action": .string(o.action.id),
            "result": .string(o.result.rawValue), "units": .stringConvertible(o.units),
          ]
          if let msg = o.message { m["error"] = .string(msg) }
          if o.result == .ok {
            actionLog.info("action \(o.result.rawValue)", metadata: m)
          } else {
            actionLog.warning("action \(o.result.rawValue)", metadata: m)
          }
        })
      let result = "\(report.succeeded) succeeded, \(report.failed) failed, \(report.deferred) deferred"
      let appliedAt: Date? = report.failed == 0 && report.deferred == 0 ? Date() : nil
      state.withLock { s in
        s.lastReconcile = started
        s.lastResult = result
        if let appliedAt { s.lastApplied = appliedAt }
        if isDrift { s.lastDrift = started }
      }
      metrics.reconciled(seconds: Date().timeIntervalSince(started), plan: plan, report: report, appliedAt: appliedAt)
      refreshQuotaGauges()
      log.info("reconciled: \(result)", metadata: ["status": .string(status)])
    } catch is CancellationError {
      // Shutting down: nothing is recorded for a run that did not finish.
      log.warning("reconcile cancelled: ytempire is shutting down; the next start plans again")
    } catch {
      state.withLock { s in
        s.lastReconcile = started
        s.lastResult = "failed: \(error)"
      }
      metrics.reconciled(seconds: Date().timeIntervalSince(started), plan: nil, report: nil, appliedAt: nil)
      log.error("reconcile failed: \(error)")
    }
  }
}

/// The reconcile loop as a ServiceLifecycle service: graceful shutdown stops it between actions.
struct LoopService: ServiceLifecycle.Service {
  let runtime: ServeRuntime
  /// Nothing is reconciled before the listener is up (its failure ends serve).
  let listening: ListenerStart
  func run() async throws {
    let rt = runtime
    _ = try await listening.wait()
    // A shared state store: campaign now and every third of the takeover bound.
    let election = Task { await rt.electionLoop() }
    defer { election.cancel() }
    // Drift checks: spread over serve.driftInterval, within serve.driftBudget.
    let drift = Task { await rt.driftLoop() }
    defer { drift.cancel() }
    await withGracefulShutdownHandler {
      await rt.loop.run { t in await rt.cycle(t) }
    } onGracefulShutdown: {
      switch rt.loop.stop() {
      case .nothingRunning: rt.logger.info("shutting down")
      case .cancelledObservation: rt.logger.info("shutting down: the observation in progress is cancelled")
      case .applyGrace(let d):
        rt.logger.info("shutting down: the action in flight finishes (or is cancelled after \(d)), the rest waits for the next start")
      }
    }
  }
}

/// A value behind a lock that closures can capture (a `Mutex` cannot be captured: it is not copyable).
final class Shared<T: Sendable>: Sendable {
  private let m: Mutex<T>
  init(_ v: T) { m = Mutex(v) }
  func withLock<R>(_ body: (inout T) throws -> R) rethrows -> R { try m.withLock { try body(&$0) } }
}

extension Logger {
  func withLevel(_ l: Logger.Level) -> Logger {
    var c = self
    c.logLevel = l
    return c
  }
}

/// Runs submitted work one item at a time, in order; at most `limit` wait (more are dropped:
/// the next push of a pull request plans it again).
final class PullRequestQueue: Sendable {
  static let limit = 32
  private let input: AsyncStream<@Sendable () async -> Void>.Continuation
  private let worker: Task<Void, Never>

  init() {
    let (stream, input) = AsyncStream<@Sendable () async -> Void>.makeStream(bufferingPolicy: .bufferingNewest(Self.limit))
    self.input = input
    worker = Task {
      for await job in stream { await job() }
    }
  }

  func submit(_ job: @escaping @Sendable () async -> Void) { input.yield(job) }

  deinit {
    input.finish()
    worker.cancel()
  }
}
