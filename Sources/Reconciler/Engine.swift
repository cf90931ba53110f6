import Basics
import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import Resilience
import Synchronization

public enum RefreshMode: String, Sendable, CaseIterable, Codable {
  /// Observe every resource now.
  case all
  /// Observe what changed since it was last applied, what was never observed, what an
  /// interrupted apply touched, and what was last observed longer ago than `observeMaxAge`.
  case changed
  /// Use stored observations; observe only what was never observed.
  case none
  /// Never observe: stored observations only, so nothing is spent (pull-request plans in
  /// `serve`). What was never observed is reported as not observed, and nothing is planned for it.
  case stored
}

public struct EngineOptions: Sendable {
  public var refresh: RefreshMode = .changed
  public var observeMaxAge: Duration = .seconds(3600)
  /// Limit the plan to these resources (empty: all).
  public var targets: [ResourceID] = []
  public var prune = true
  public var maxDeletePercent = 30.0
  public var maxUpdatePercent = 50.0
  public var minExisting = 10
  /// Resources applied at once (each resource's own actions run in order).
  public var concurrency = 8
  /// `policy.syncWindows`; `--force` sets `ignoreSyncWindows`.
  public var syncWindows: SyncWindows = .none
  public var ignoreSyncWindows = false
  /// How long after a create was sent the service may still execute it although its answer
  /// was lost (`policy.unknownOutcomeWait`): until then that create is not sent again.
  public var unknownOutcomeWait: Duration = .seconds(120)
  /// `--force`: delete owned objects that still hold content (a playlist's videos).
  public var deleteNonEmpty = false
  /// `deadlines.call`: one integration call, all attempts and waits; nil: none.
  public var callTimeout: Duration?
  /// `deadlines.observe`: the whole observation of a plan; nil: none. What is not observed by
  /// then fails its observation (the plan leaves it alone) and the plan goes on.
  public var observeTimeout: Duration?
  /// Who applies (`apply` or `serve`, and the host), for the audit log.
  public var actor = AuditActor(role: .apply, host: AuditActor.localHost())
  public init() {}

  /// The deadlines of `ytempire.yaml`.
  public mutating func apply(_ d: ReconcilerConfig.Deadlines) {
    callTimeout = d.call.swiftDuration
    observeTimeout = d.observe.swiftDuration
  }
}

/// An integration the configuration leaves out (or that has no driver yet): the plan lists
/// each resource it leaves unreconciled, never silently.
public struct UnconfiguredIntegration: Sendable {
  public var name: String
  public var kinds: Set<Kind>
  public var reason: String
  public init(name: String, kinds: Set<Kind>, reason: String) {
    self.name = name
    self.kinds = kinds
    self.reason = reason
  }
}

public struct EngineError: Error, Sendable, CustomStringConvertible {
  public enum Code: String, Sendable { case safety, stale, store, observation }
  public var code: Code
  public var message: String
  public init(_ code: Code, _ message: String) {
    self.code = code
    self.message = message
  }
  public var description: String { message }
}

/// What happened to one action during apply.
public struct ActionOutcome: Sendable {
  public enum Result: String, Sendable { case ok, failed, deferred, skipped }
  public var action: Action
  public var result: Result
  public var message: String?
  public var calls: [CallRecord]
  /// Why a deferred action waits (quota or sync window) and until when.
  public var deferral: Plan.Deferral? = nil
  /// What kind of failure a failed action met (nil: unknown).
  public var category: DriverErrorCategory? = nil
  public var units: Int { calls.reduce(0) { $0 &+ $1.call.units } }
}

public struct ApplyReport: Sendable {
  public var revision: String
  public var outcomes: [ActionOutcome]
  public var failed: Int { outcomes.count { $0.result == .failed } }
  public var deferred: Int { outcomes.count { $0.result == .deferred } }
  public var succeeded: Int { outcomes.count { $0.result == .ok } }
  public var interruptedRecovered: Int
  /// The circuit breakers' states at the end of the apply, by service.
  public var breakers: [String: CircuitBreaker.State] = [:]
}

public enum ApplyEvent: Sendable {
  case started(Action, index: Int, total: Int)
  case finished(ActionOutcome, done: Int, total: Int)
}

/// observe → diff → plan → apply. One engine: the CLI and the service call the same code.
public final class Engine: Sendable {
  public let drivers: [any Driver]
  public let store: any StateStore
  public let transport: any HTTPTransport
  public let unconfigured: [UnconfiguredIntegration]
  public let options: EngineOptions
  public let clock: any ResilienceClock
  private let log: @Sendable (String) -> Void

  public init(
    drivers: [any Driver], store: any StateStore, transport: any HTTPTransport, unconfigured: [UnconfiguredIntegration] = [],
    options: EngineOptions = EngineOptions(), clock: any ResilienceClock = SystemClock(),
    log: @escaping @Sendable (String) -> Void = { _ in }
  ) {
    self.drivers = drivers
    self.store = store
    self.transport = transport
    self.unconfigured = unconfigured
    self.options = options
    self.clock = clock
    self.log = log
  }

  /// One resilience registry per run: planning, checking a plan file and applying a revision
  /// share its limiters, breakers and ledgers (a revision's RateLimits are fixed).
  private let registries = Mutex<(revision: String, registry: ServiceRegistry)?>(nil)

  /// The registry of the run at `revision`, made on first use.
  public func registry(for revision: String, _ index: DesiredIndex) throws -> ServiceRegistry {
    try registries.withLock { cached in
      if let c = cached, c.revision == revision { return c.registry }
      let r = try ServiceRegistry(desired: index, transport: transport, windows: store, clock: clock, callTimeout: options.callTimeout)
      cached = (revision, r)
      return r
    }
  }

  /// Kinds converged in this order; deletes run in the reverse order.
  static let kindOrder: [Kind] = [.rateLimit, .providerChain, .securityPolicy, .channel, .schedule, .cdnZone, .monitor]

  private func inTargets(_ id: ResourceID) -> Bool { options.targets.isEmpty || options.targets.contains(id) }

  func context(_ index: DesiredIndex, _ pricing: Pricing, _ registry: ServiceRegistry, _ recorder: CallRecorder?) -> DriverContext {
    let clock = self.clock
    return DriverContext(
      desired: index, pricing: pricing, cache: store, client: { _ in registry.client(recorder: recorder) },
      now: { clock.wallNow }, log: log)
  }

  /// The name of the observation deadline's setting, for messages.
  public static let observeDeadlineSetting = "deadlines.observe"

  /// `driver.observe`, given up (and cancelled) at `deadline`.
  private func observe(
    _ driver: any Driver, _ targets: [ObserveTarget], context: DriverContext,
    until deadline: ContinuousClock.Instant?
  ) async throws -> [ResourceID: ObservationOutcome] {
    guard let deadline, let total = options.observeTimeout else { return try await driver.observe(targets, context: context) }
    let left = clock.now.duration(to: deadline)
    let what = "observing through \(driver.displayName)"
    let exceeded: @Sendable () -> any Error = { DeadlineExceeded(what: what, limit: total, setting: Self.observeDeadlineSetting) }
    guard left > .zero else { throw exceeded() }
    return try await Deadline.run(left, clock: clock, exceeded: exceeded) { try await driver.observe(targets, context: context) }
  }

  // MARK: plan

  /// Plans `desired` (a validated revision). Changes nothing outside the state store, where it
  /// keeps the observations it paid for. Stages (PlanStages.swift): per driver, select what to
  /// observe, observe it, diff each resource; then price the actions and check the safety
  /// thresholds.
  public func plan(_ desired: [Resource], revision: String, files: RepositoryFiles = .none) async throws -> Plan {
    let index = DesiredIndex(desired, files: files)
    let pricing = Pricing(index)
    let registry = try self.registry(for: revision, index)
    let now = clock.wallNow
    let open = Set(try store.openJournalEntries().map { DriverResourceKey($0.driver, $0.resource) })
    let budgetsBefore = registry.ledgers.mapValues(\.budget)

    var actions: [Plan.PlannedAction] = []
    var changes: [ResourceID: Plan.ResourceChange] = [:]
    var observedNow = 0
    var fromStore = 0
    var oldest: Double?
    var observationCalls: [PlannedCall] = []
    var basis: [String: JSONValue] = [:]
    var digests: [DriverResourceKey: String] = [:]
    /// Resources some driver has applied (the safety thresholds' denominator).
    var managed = Set<ResourceID>()
    var adopted: [DriverResourceKey: [String: String]] = [:]
    let renames = Renames.map(desired)
    let observeDeadline = options.observeTimeout.map { clock.now.advanced(by: $0) }

    func change(_ id: ResourceID) -> Plan.ResourceChange {
      changes[id]
        ?? Plan.ResourceChange(
          id: id, change: .none, driftedFields: [], driftReportOnly: false, pruneHeld: [], drivers: [], observationError: nil, findings: [])
    }

    for driver in drivers {
      var records = Dictionary(try store.records(driver: driver.name).map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
      for r in records.values where r.appliedDigest != nil { managed.insert(r.id) }
      let carried = Renames.carry(&records, renames)
      let mine = desired.filter { driver.kinds.contains($0.kind) && inTargets(ResourceID($0)) }
      let desiredIDs = Set(mine.map(ResourceID.init))
      let orphans = records.values.filter {
        !desiredIDs.contains($0.id) && inTargets($0.id) && ($0.appliedDigest != nil || !$0.external.isEmpty)
      }

      var items: [PlanItem] = mine.map { r in
        let d = driver.desired(r, in: index)
        return PlanItem(
          id: ResourceID(r), desired: d, record: records[ResourceID(r)], resource: r, digest: Digest.sha256Hex(d.canonicalBytes))
      }
      items += orphans.sorted { $0.id < $1.id }.map { PlanItem(id: $0.id, desired: nil, record: $0, resource: nil, digest: nil) }
      for it in items { if let d = it.digest { digests[DriverResourceKey(driver.name, it.id)] = d } }

      // Which to observe now, which to take from the store. An observation that costs no
      // quota unit (n8n, Cloudflare, Vault, Prometheus, the config store: only rate limits
      // apply) is made every time; quota-priced ones follow the refresh rules.
      let free =
        options.refresh == .changed
        && Self.observationIsFree(
          driver,
          items.map {
            ObserveTarget(id: $0.id, desired: $0.desired, external: $0.record?.external ?? [:])
          }, pricing)
      let selection = ObservationStage.select(items, refresh: options.refresh, free: free, maxAge: options.observeMaxAge, now: now) { id in
        // An interrupted apply touched it; or renamed: its objects are found where the old name put them.
        open.contains(DriverResourceKey(driver.name, id)) || carried[id] != nil
      }
      fromStore += selection.stored.count
      if let age = selection.oldestStoredAge { oldest = max(oldest ?? 0, age) }

      var observed = selection.stored
      var failures: [ResourceID: String] = [:]
      if options.refresh == .stored {
        for it in items where observed[it.id] == nil {
          failures[it.id] = "never observed: a pull-request plan uses stored observations only and spends no quota"
        }
      }
      if !selection.observe.isEmpty {
        let targets = selection.observe.map {
          ObserveTarget(id: $0.id, desired: $0.desired, external: $0.record?.external ?? [:], renamedFrom: carried[$0.id]?.name)
        }
        observationCalls += driver.observationCalls(targets, pricing: pricing)
        let outcome = try await observeNow(
          driver, targets, context: context(index, pricing, registry, nil), until: observeDeadline, at: now)
        for (id, state) in outcome.observed { observed[id] = state }
        for (id, ext) in outcome.adopted { adopted[DriverResourceKey(driver.name, id)] = ext }
        failures = outcome.failures
        observedNow += outcome.observed.count
      }

      for it in items {
        let key = DriverResourceKey(driver.name, it.id)
        let r = DiffStage.resolve(
          driver, it, observed: observed[it.id], failure: failures[it.id], adopted: adopted[key] ?? [:],
          change: change(it.id), pricing: pricing, options: options, now: now)
        if failures[it.id] != nil || observed[it.id] != nil { changes[it.id] = r.change }
        if let b = r.basis { basis[key.description] = b }
        actions += r.actions
      }
    }

    // Resources no configured driver converges.
    var unreconciled: [Plan.Unreconciled] = []
    for r in desired where inTargets(ResourceID(r)) {
      for u in unconfigured where u.kinds.contains(r.kind) {
        unreconciled.append(.init(id: ResourceID(r), integration: u.name, reason: u.reason))
      }
      if changes[ResourceID(r)] == nil && !drivers.contains(where: { $0.kinds.contains(r.kind) }) { continue }
      if changes[ResourceID(r)] == nil { changes[ResourceID(r)] = change(ResourceID(r)) }
    }

    actions = Self.order(actions)
    try deferUnsettledCreates(&actions, now: now)
    // Priced against what the ledgers allow now (after the observation).
    let priced = PriceStage.price(
      &actions, budgets: registry.ledgers.mapValues(\.budget), shares: Self.channelShares(index),
      syncWindows: options.ignoreSyncWindows ? nil : options.syncWindows, now: now)

    var quotas: [Plan.QuotaUse] = []
    for (name, b) in budgetsBefore.sorted(by: { $0.key < $1.key }) {
      let after = registry.ledgers[name]!.budget
      let spentByObservation = max(0, after.spent &- b.spent)
      quotas.append(
        .init(
          rateLimit: name, service: pricing.rateLimits[name]?.service ?? name, units: b.units,
          observationUnits: spentByObservation, actionUnits: priced.actionUnits[name] ?? 0,
          deferredUnits: priced.deferredUnits[name] ?? 0, available: after.available(), resetsAt: after.resetsAt))
    }

    let resourceChanges = changes.values.sorted { $0.id < $1.id }
    let safety = SafetyStage.check(resourceChanges, managed: managed.count, options: options)

    let obsDigest = Digest.sha256Hex(JSONValue.object(basis).canonicalBytes)
    var plan = Plan(
      revision: revision, createdAt: now, actions: actions, resources: resourceChanges,
      observation: .init(
        observedNow: observedNow, fromStore: fromStore, oldestStoredAge: oldest, refresh: options.refresh.rawValue,
        calls: observationCalls, digest: obsDigest),
      quotas: quotas, unreconciled: unreconciled, safety: safety, targets: options.targets.sorted(),
      desiredDigests: digests, adopted: adopted)
    plan.findingTypes = Array(Set(drivers.flatMap(\.findingTypes))).sorted()
    plan.seal(key: try store.planKey())
    try? store.rememberPlan(digest: plan.digest, revision: revision, at: now)
    return plan
  }

  /// What observing through one driver found.
  struct Observed {
    var observed: [ResourceID: JSONValue] = [:]
    /// Ids found while observing (adoption by title).
    var adopted: [ResourceID: [String: String]] = [:]
    /// Why a target has no observation.
    var failures: [ResourceID: String] = [:]
  }

  /// Observes `targets` now and saves what was observed; a failure (quota, transport, deadline)
  /// is each target's observation error, never the plan's, except a cancellation.
  private func observeNow(
    _ driver: any Driver, _ targets: [ObserveTarget], context: DriverContext,
    until deadline: ContinuousClock.Instant?, at now: Date
  ) async throws -> Observed {
    var out = Observed()
    do {
      let results = try await observe(driver, targets, context: context, until: deadline)
      // A driver may report a cancelled call as a failed observation: a cancelled
      // plan is never taken for one that observed.
      try Task.checkCancellation()
      var save: [(id: ResourceID, observed: JSONValue)] = []
      for t in targets {
        switch results[t.id] {
        case .observed(let state, let ext)?:
          out.observed[t.id] = state
          if !ext.isEmpty { out.adopted[t.id] = ext }
          save.append((t.id, state))
        case .failed(let why)?: out.failures[t.id] = why
        case nil: out.failures[t.id] = "\(driver.displayName) returned no observation"
        }
      }
      try store.saveObservations(driver: driver.name, save, at: now)
    } catch let e as QuotaExhausted {
      for t in targets { out.failures[t.id] = "cannot observe within the quota: \(e.description)" }
    } catch is CancellationError {
      throw CancellationError()
    } catch {
      for t in targets { out.failures[t.id] = "cannot observe through \(driver.displayName): \(error)" }
    }
    return out
  }

  /// A create whose earlier attempt's answer was lost may still be executed by the service
  /// until the journal's `settleBy`: it is not sent again before then (Deferred,
  /// OutcomeUnknown); afterwards the resource is observed and what landed is adopted.
  func deferUnsettledCreates(_ actions: inout [Plan.PlannedAction], now: Date) throws {
    let unsettled = try store.unsettledEntries(now: now)
    guard !unsettled.isEmpty else { return }
    // By action id: only the create that went unanswered waits (the resource's other creates were never sent).
    var latest: [String: JournalEntry] = [:]
    for e in unsettled {
      if let have = latest[e.actionID], (have.settleBy ?? .distantPast) >= (e.settleBy ?? .distantPast) { continue }
      latest[e.actionID] = e
    }
    for i in actions.indices where actions[i].action.operation == .create {
      let a = actions[i].action
      guard let e = latest[a.id], let until = e.settleBy else { continue }
      actions[i].deferred = Plan.Deferral(
        reason: .outcomeUnknown,
        message:
          "an earlier \(e.operation) of \(a.summary) sent at \(PlanRenderer.iso(e.startedAt)) got no answer; the service may still execute it until \(PlanRenderer.iso(until)), then it is observed and adopted if it landed",
        eta: until)
    }
  }

  /// Whether observing `targets` through `driver` costs no quota unit. One target decides
  /// for a priced driver (YouTube), so the whole observation is not planned — with a secret
  /// read per credential — just to learn it is not free; the rest are checked only when it is.
  static func observationIsFree(_ driver: any Driver, _ targets: [ObserveTarget], _ pricing: Pricing) -> Bool {
    guard let first = targets.first else { return false }
    func free(_ t: [ObserveTarget]) -> Bool { driver.observationCalls(t, pricing: pricing).allSatisfy { $0.units == 0 } }
    return free([first]) && free(targets)
  }

  /// Channel name → quotaShare (for channels that set one).
  static func channelShares(_ index: DesiredIndex) -> [String: Double] {
    var m: [String: Double] = [:]
    for c in index.all(.channel) { if let s = c.channel?.limits?.quotaShare { m[c.name] = s } }
    return m
  }

  /// Creates and updates by kind (dependencies first), then deletes in the reverse order;
  /// a resource's own actions keep the driver's order.
  static func order(_ a: [Plan.PlannedAction]) -> [Plan.PlannedAction] {
    func rank(_ k: Kind) -> Int { kindOrder.firstIndex(of: k) ?? kindOrder.count }
    let indexed = Array(a.enumerated())
    let forward = indexed.filter { $0.element.action.operation != .delete }
      .sorted {
        (rank($0.element.action.resource.kind), $0.element.action.resource.name, $0.offset) < (
          rank($1.element.action.resource.kind), $1.element.action.resource.name, $1.offset
        )
      }
    let deletes = indexed.filter { $0.element.action.operation == .delete }
      .sorted {
        (-rank($0.element.action.resource.kind), $0.element.action.resource.name, $0.offset) < (
          -rank($1.element.action.resource.kind), $1.element.action.resource.name, $1.offset
        )
      }
    return (forward + deletes).map(\.element)
  }

  // MARK: staleness

  /// Checks a plan read from a file before it is applied. Its keyed digest proves it was
  /// made against this state; this proves it still holds and asks nothing the desired state
  /// and the state store do not call for: every resource it marks applied has that desired
  /// digest now, every id it adopts is what observing finds, and every action is one the
  /// driver plans again from the desired state, the stored ids and a fresh observation (so a
  /// delete is only of what the store records as owned, and ids come from the store).
  /// Refuses it as stale when the observed state has moved since it was made.
  public func checkPlan(_ plan: Plan, desired: [Resource], files: RepositoryFiles = .none) async throws {
    let index = DesiredIndex(desired, files: files)
    let pricing = Pricing(index)
    let registry = try self.registry(for: plan.revision, index)
    let byName = Dictionary(drivers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
    func refuse(_ why: String) -> EngineError { EngineError(.stale, "plan does not hold: \(why); run plan again") }
    for (key, digest) in plan.desiredDigests {
      guard let driver = byName[key.driver] else { throw refuse("it names \(key), which no configured driver converges") }
      let id = key.resource
      let now = index[id].map { Digest.sha256Hex(driver.desired($0, in: index).canonicalBytes) }
      guard now == digest else { throw refuse("\(id) is not at its desired state of \(plan.revision)") }
    }
    var observed: [String: JSONValue] = [:]
    let byDriver = Dictionary(grouping: plan.actions.map(\.action), by: \.driver)
    for name in byDriver.keys where byName[name] == nil { throw refuse("it has actions for \(name), which is not configured") }
    for key in plan.adopted.keys where byName[key.driver] == nil {
      throw refuse("it adopts ids for \(key), which no configured driver converges")
    }
    var rechecks: [(driver: any Driver, target: ObserveTarget, state: JSONValue, external: [String: String])] = []
    let renames = Renames.map(desired)
    for driver in drivers {
      let acts = byDriver[driver.name] ?? []
      let adoptedIDs = plan.adopted.keys.filter { $0.driver == driver.name }.map(\.resource)
      let ids = Array(Set(acts.map(\.resource) + adoptedIDs)).sorted()
      guard !ids.isEmpty else { continue }
      var stored: [ResourceID: [String: String]] = [:]
      let targets = try ids.map { id -> ObserveTarget in
        // A renamed resource's records are still under its old name until apply moves them.
        let (rec, renamedFrom) = try Renames.record(store, driver: driver.name, id: id, renames)
        stored[id] = rec?.external ?? [:]
        return ObserveTarget(
          id: id, desired: index[id].map { driver.desired($0, in: index) }, external: rec?.external ?? [:],
          renamedFrom: renamedFrom)
      }
      let results = try await driver.observe(targets, context: context(index, pricing, registry, nil))
      for t in targets {
        guard case .observed(let state, let found)? = results[t.id] else {
          throw EngineError(.stale, "plan is stale: \(t.id) could not be observed again to check the plan")
        }
        observed[DriverResourceKey(driver.name, t.id).description] = state
        var external = stored[t.id] ?? [:]
        for (k, v) in found where external[k] == nil { external[k] = v }
        rechecks.append((driver, t, state, external))
      }
    }
    let acting = Set(plan.actions.map { DriverResourceKey($0.action.driver, $0.action.resource).description })
    let digest = Digest.sha256Hex(JSONValue.object(observed.filter { acting.contains($0.key) }).canonicalBytes)
    guard digest == plan.observation.digest else {
      throw EngineError(.stale, "plan is stale: the observed state of the resources it changes has moved since it was made; run plan again")
    }
    // Unmoved: the driver plans the same again from the desired state and the store's ids.
    for (driver, t, state, external) in rechecks {
      for (k, v) in plan.adopted[DriverResourceKey(driver.name, t.id)] ?? [:] where external[k] != v {
        throw refuse("it adopts \(k) of \(t.id), which is not what observing finds")
      }
      let again = Set(
        driver.diff(DiffInput(id: t.id, desired: t.desired, observed: state, external: external, pricing: pricing)).map(Self.canonical))
      for a in byDriver[driver.name] ?? [] where a.resource == t.id && !again.contains(Self.canonical(a)) {
        throw refuse("its action \(a.id) is not one the desired state and the state store call for")
      }
    }
  }

  /// An action as its file form has it (a planned action round-trips through JSON).
  static func canonical(_ a: Action) -> String {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys]
    guard let once = try? e.encode(a), let back = try? JSONDecoder().decode(Action.self, from: once), let twice = try? e.encode(back) else {
      return a.id
    }
    return String(decoding: twice, as: UTF8.self)
  }

  // MARK: apply

  /// Applies the plan's runnable actions: the intent journal is written before each action
  /// and completed after it; independent resources continue when one fails.
  /// `shouldStop` is asked before each action: once it says yes (a service shutting down), the
  /// action in flight finishes and is recorded, and the rest are skipped, not attempted.
  public func apply(
    _ plan: Plan, desired: [Resource], files: RepositoryFiles = .none, force: Bool = false,
    shouldStop: @escaping @Sendable () -> Bool = { false },
    onEvent: @escaping @Sendable (ApplyEvent) -> Void = { _ in }
  ) async throws -> ApplyReport {
    if !plan.safety.isEmpty && !force {
      throw EngineError(.safety, "apply refused: " + plan.safety.map(\.message).joined(separator: "; "))
    }
    let index = DesiredIndex(desired, files: files)
    let pricing = Pricing(index)
    let registry = try self.registry(for: plan.revision, index)
    let recovered = try store.closeInterrupted(at: clock.wallNow)
    try Renames.move(Renames.map(desired), in: store)
    let run = UUID().uuidString.lowercased()
    let driversByName = Dictionary(drivers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })

    for (key, ext) in plan.adopted { try store.adopt(driver: key.driver, id: key.resource, external: ext) }

    var outcomes: [ActionOutcome] = plan.actions.filter { $0.deferred != nil }.map {
      ActionOutcome(action: $0.action, result: .deferred, message: $0.deferred?.message, calls: [], deferral: $0.deferred)
    }
    // Sync windows are judged again now: a saved plan may be applied after its window closed.
    let applyTime = clock.wallNow
    var runnable: [Action] = []
    for a in plan.runnable.map(\.action) {
      if !options.ignoreSyncWindows, let (why, eta) = options.syncWindows.hold(a.resource, at: applyTime) {
        let d = Plan.Deferral(reason: .syncWindow, message: why, eta: eta)
        outcomes.append(ActionOutcome(action: a, result: .deferred, message: why, calls: [], deferral: d))
      } else {
        runnable.append(a)
      }
    }
    let total = runnable.count
    let done = Counter()

    // Two phases: creates and updates, then deletes; within a phase, resources in parallel.
    for phase in [runnable.filter { $0.operation != .delete }, runnable.filter { $0.operation == .delete }] {
      var groups: [[Action]] = []
      var at: [DriverResourceKey: Int] = [:]
      for a in phase {
        let k = DriverResourceKey(a.driver, a.resource)
        if let i = at[k] {
          groups[i].append(a)
        } else {
          at[k] = groups.count
          groups.append([a])
        }
      }
      let limit = max(1, options.concurrency)
      let phaseResults = await withTaskGroup(of: [ActionOutcome].self) { group -> [ActionOutcome] in
        var next = 0
        var collected: [ActionOutcome] = []
        var finished = 0
        while next < groups.count || !group.isEmpty {
          while next < groups.count && next < limit + finished {
            let g = groups[next]
            next += 1
            group.addTask {
              await self.applyGroup(
                g, run: run, revision: plan.revision, index: index, pricing: pricing, registry: registry, drivers: driversByName,
                shouldStop: shouldStop, onEvent: onEvent, done: done, total: total)
            }
          }
          if let r = await group.next() {
            collected += r
            finished += 1
          } else {
            break
          }
        }
        return collected
      }
      outcomes += phaseResults
    }

    let all = outcomes
    // Converged resources: record their desired digest at this revision; deleted ones are forgotten.
    let failedKeys = Set(all.filter { $0.result != .ok }.map { DriverResourceKey($0.action.driver, $0.action.resource) })
    let notPlanned = Set(plan.resources.filter { $0.observationError != nil || $0.driftReportOnly }.map(\.id))
    try store.markApplied(
      plan.desiredDigests.filter { !failedKeys.contains($0.key) && !notPlanned.contains($0.key.resource) }.sorted { $0.key < $1.key }.map {
        AppliedMark(
          driver: $0.key.driver, id: $0.key.resource, digest: $0.value, revision: plan.revision,
          annotations: index[$0.key.resource]?.metadata.annotations ?? [:])
      })
    // Resources that left the repository: forgotten once nothing of theirs is left (their
    // deletes succeeded, or there was nothing to delete), unless pruning kept something.
    for r in plan.resources where index[r.id] == nil && r.pruneHeld.isEmpty && r.observationError == nil {
      for d in drivers where !failedKeys.contains(DriverResourceKey(d.name, r.id)) && index[r.id] == nil {
        if try store.record(driver: d.name, id: r.id) != nil { try store.forget(driver: d.name, id: r.id) }
      }
    }
    try store.setMeta(.lastAttemptedRevision, plan.revision)
    let clean = all.allSatisfy { $0.result == .ok } && plan.resources.allSatisfy { $0.observationError == nil }
    if clean { try store.setMeta(.lastAppliedRevision, plan.revision) }
    return ApplyReport(revision: plan.revision, outcomes: all, interruptedRecovered: recovered, breakers: registry.breakers.states)
  }

  /// A store call from the apply's concurrent tasks: made off the cooperative pool when the
  /// store waits on the network, so a round trip never idles one of the pool's threads.
  private func stored<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await AsyncBridge.offload(when: store.waitsOnNetwork, body)
  }

  /// The service (or the ledger) said its quota is spent, or a Retry-After is out of reach:
  /// deferred to the reset, not failed.
  static func isQuotaAnswer(_ error: any Error) -> Bool { DriverErrorCategory.of(error) == .quota }

  private func applyGroup(
    _ group: [Action], run: String, revision: String, index: DesiredIndex, pricing: Pricing, registry: ServiceRegistry,
    drivers: [String: any Driver], shouldStop: @escaping @Sendable () -> Bool,
    onEvent: @escaping @Sendable (ApplyEvent) -> Void, done: Counter, total: Int
  ) async -> [ActionOutcome] {
    var results: [ActionOutcome] = []
    guard let first = group.first, let driver = drivers[first.driver] else {
      return group.map { ActionOutcome(action: $0, result: .failed, message: "no driver \($0.driver) is configured", calls: []) }
    }
    let store = self.store
    let rec = try? await stored { try store.record(driver: driver.name, id: first.resource) }
    var observed = rec?.observed ?? .null
    var external = rec?.external ?? [:]
    var blocked: String?
    for a in group {
      if blocked == nil && shouldStop() { blocked = "ytempire is shutting down" }
      if let blocked {
        results.append(ActionOutcome(action: a, result: .skipped, message: "not attempted: \(blocked)", calls: []))
        continue
      }
      onEvent(.started(a, index: done.value + 1, total: total))
      let recorder = CallRecorder()
      var outcome: ActionOutcome
      // The calls that changed (or may have changed) something, recorded with the journal's completion.
      let actor = options.actor
      func complete(
        _ seq: Int64, _ result: String, _ message: String?, _ externalChanges: [String: String?] = [:], _ observed: JSONValue? = nil
      ) async throws {
        let at = clock.wallNow
        let audit = AuditLog.records(action: a, calls: recorder.records, actionResult: result, revision: revision, actor: actor, at: at)
        let name = driver.name
        try await stored {
          try store.completeAction(
            journal: seq, result: result, message: message, driver: name, id: a.resource,
            externalChanges: externalChanges, observed: observed, audit: audit, at: at)
        }
      }
      do {
        let sent = clock.wallNow
        // A create is not idempotent: should its answer be lost, the service may still execute it until then.
        let settleBy = a.operation == .create ? sent.addingTimeInterval(options.unknownOutcomeWait.timeInterval) : nil
        let seq = try await stored { try store.beginAction(run: run, action: a, at: sent, settleBy: settleBy) }
        do {
          let r = try await driver.apply(a, observed: observed, external: external, context: context(index, pricing, registry, recorder))
          for (k, v) in r.external { external[k] = v }
          if let o = r.observed { observed = o }
          try await complete(seq, "ok", nil, r.external, r.observed)
          outcome = ActionOutcome(action: a, result: .ok, message: nil, calls: recorder.records)
        } catch let e as QuotaExhausted {
          try await complete(seq, "deferred", e.description)
          outcome = ActionOutcome(action: a, result: .deferred, message: e.description, calls: recorder.records)
          blocked = "an earlier action of \(a.resource) was deferred"
        } catch let e as OutcomeUnknown {
          // Not repeated: the resource is observed once the service can no longer execute it.
          let eta = settleBy ?? clock.wallNow
          try await complete(seq, "outcomeUnknown", e.description)
          outcome = ActionOutcome(
            action: a, result: .deferred, message: e.description, calls: recorder.records,
            deferral: Plan.Deferral(reason: .outcomeUnknown, message: e.description, eta: eta))
          blocked = "an earlier action of \(a.resource) has an unknown outcome"
        } catch  where Self.isQuotaAnswer(error) {
          // The service itself said its quota is spent: defer to the reset, do not fail.
          let message = "\(error)"
          try await complete(seq, "deferred", message)
          outcome = ActionOutcome(action: a, result: .deferred, message: message, calls: recorder.records)
          blocked = "an earlier action of \(a.resource) was deferred"
        } catch {
          // Cancelled (serve shutting down after its grace period): what the call did is
          // not known; the next plan observes it.
          let message =
            error is CancellationError ? "interrupted: ytempire is shutting down; the next plan observes what happened" : "\(error)"
          try await complete(seq, "failed", message)
          outcome = ActionOutcome(
            action: a, result: .failed, message: message, calls: recorder.records,
            category: DriverErrorCategory.of(error))
          blocked = "an earlier action of \(a.resource) failed"
        }
      } catch {
        outcome = ActionOutcome(action: a, result: .failed, message: "state store: \(error)", calls: recorder.records)
        blocked = "the state store failed"
      }
      results.append(outcome)
      let n = done.increment()
      onEvent(.finished(outcome, done: n, total: total))
    }
    return results
  }
}
