import Basics
import CurlHTTP
import EmpireModel
import Foundation
import Resilience

/// Kind and name of a desired-state resource: `Channel/tech-daily`.
public struct ResourceID: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
  public var kind: Kind
  public var name: String
  public init(_ kind: Kind, _ name: String) {
    self.kind = kind
    self.name = name
  }
  public init(_ r: Resource) { self.init(r.kind, r.name) }
  public var description: String { "\(kind.rawValue)/\(name)" }
  public static func < (a: ResourceID, b: ResourceID) -> Bool { a.kind == b.kind ? a.name < b.name : a.kind < b.kind }
  /// Parses `Kind/name` (the `--target` syntax); kinds compare case-insensitively.
  public init?(parsing s: String) {
    guard let slash = s.firstIndex(of: "/") else { return nil }
    let k = s[..<slash]
    let n = s[s.index(after: slash)...]
    guard let kind = Kind.allCases.first(where: { $0.rawValue.lowercased() == k.lowercased() }), !n.isEmpty else { return nil }
    self.init(kind, String(n))
  }
}

/// One API call an action or an observation will make, with its price in quota units.
public struct PlannedCall: Sendable, Hashable, Codable {
  /// The service called (`youtube`, `configStore`, `n8n`, …).
  public var service: String
  /// `resource.method` as the governing RateLimit's `costs` names it (`channels.update`).
  public var operation: String
  /// Units charged against `quota` (0 when the service has no unit quota).
  public var units: Int
  /// The RateLimit whose quota pays for the call, when it has one.
  public var quota: String?
  /// The channel whose share pays for it (YouTube reservations), when one does.
  public var channel: String?
  public init(service: String, operation: String, units: Int, quota: String?, channel: String?) {
    self.service = service
    self.operation = operation
    self.units = units
    self.quota = quota
    self.channel = channel
  }
  /// `service.operation`, the name status files and plans show.
  public var name: String { "\(service).\(operation)" }
}

public enum ActionOperation: String, Sendable, Hashable, Codable, CaseIterable {
  case create, update, delete
  public var symbol: String {
    switch self {
    case .create: "+"
    case .update: "~"
    case .delete: "-"
    }
  }
}

/// A field that differs: `branding.title: "Old" → "New"`. Sensitive fields carry no values.
public struct FieldChange: Sendable, Hashable, Codable {
  public var path: String
  public var old: JSONValue?
  public var new: JSONValue?
  public var sensitive: Bool
  public init(path: String, old: JSONValue?, new: JSONValue?, sensitive: Bool = false) {
    self.path = path
    self.sensitive = sensitive
    // A null value is "none" (as JSONDiff treats it): plan files then read back exactly as written.
    self.old = sensitive || old == .null ? nil : old
    self.new = sensitive || new == .null ? nil : new
  }
}

/// One step of a plan: an operation on one object of one resource in one integration.
public struct Action: Sendable, Hashable, Codable {
  public var driver: String
  public var resource: ResourceID
  public var operation: ActionOperation
  /// What inside the resource the action touches: `branding`, `playlist/ai-explained`, `row`.
  public var key: String
  /// A short human description (`playlist "AI Explained"`).
  public var summary: String
  public var changes: [FieldChange]
  /// Every call the action will make, priced.
  public var calls: [PlannedCall]
  /// What the driver needs to apply it (never a secret: plans are written to files).
  public var payload: JSONValue
  /// What a delete would destroy with the object, as a person reads it (`3 videos`). The engine
  /// blocks such a delete unless `apply --force` or the resource's `ytempire.io/delete-nonempty: "true"`
  /// allows it. Nil: the object holds nothing (or the driver cannot tell).
  public var holds: String? = nil

  public init(
    driver: String, resource: ResourceID, operation: ActionOperation, key: String, summary: String,
    changes: [FieldChange], calls: [PlannedCall], payload: JSONValue = .null
  ) {
    self.driver = driver
    self.resource = resource
    self.operation = operation
    self.key = key
    self.summary = summary
    self.changes = changes
    self.calls = calls
    self.payload = payload
  }

  /// Stable within a plan: `youtube:Channel/tech-daily:update:branding`.
  public var id: String { "\(driver):\(resource):\(operation.rawValue):\(key)" }
  public var units: Int { calls.reduce(0) { $0 &+ $1.units } }
}

/// Looks up what a call costs, from the governing RateLimit's `costs` (never from code).
public struct Pricing: Sendable {
  public struct Quota: Sendable, Hashable {
    public var rateLimit: String
    public var service: String
    public var units: Int
    public var costs: [String: Int]
  }
  /// RateLimit name → its service and unit quota (nil when it has none).
  public let rateLimits: [String: (service: String, quota: Quota?)]
  /// Service → the RateLimit governing it when a call names none (the first by name).
  public let byService: [String: String]

  public init(_ limits: [(name: String, spec: RateLimitSpec)]) {
    var r: [String: (service: String, quota: Quota?)] = [:]
    var s: [String: String] = [:]
    for (name, spec) in limits.sorted(by: { $0.name < $1.name }) {
      let q = spec.quota.map { Quota(rateLimit: name, service: spec.service, units: $0.units, costs: $0.costs) }
      r[name] = (spec.service, q)
      if s[spec.service] == nil { s[spec.service] = name }
    }
    rateLimits = r
    byService = s
  }

  public init(_ desired: DesiredIndex) {
    self.init(desired.all(.rateLimit).compactMap { r in r.rateLimit.map { (r.name, $0) } })
  }

  /// The RateLimit governing `service` (the named one if it governs that service).
  public func rateLimit(for service: String, named: String? = nil) -> String? {
    if let named, rateLimits[named]?.service == service { return named }
    return byService[service]
  }

  /// The call priced by its RateLimit: an operation missing from a quota's cost map costs 1
  /// (every YouTube request costs at least a unit); a service without a unit quota costs 0.
  public func call(_ service: String, _ operation: String, rateLimit named: String? = nil, channel: String? = nil) -> PlannedCall {
    let rl = rateLimit(for: service, named: named)
    guard let rl, let q = rateLimits[rl]?.quota else {
      return PlannedCall(service: service, operation: operation, units: 0, quota: nil, channel: nil)
    }
    return PlannedCall(service: service, operation: operation, units: q.costs[operation] ?? 1, quota: q.rateLimit, channel: channel)
  }

  public func quota(_ name: String) -> Quota? { rateLimits[name]?.quota }
}

/// The non-manifest files of the revision being reconciled (workflow JSON, worker scripts),
/// by path relative to the manifests' folder, as the manifests name them.
public struct RepositoryFiles: Sendable {
  private let reader: @Sendable (String) -> [UInt8]?
  /// `read` returns the file's bytes, or nil when the revision has no such regular file.
  public init(_ read: @escaping @Sendable (String) -> [UInt8]?) { reader = read }
  public func read(_ path: String) -> [UInt8]? { reader(path) }
  /// No files (resources that name none, tests).
  public static let none = RepositoryFiles { _ in nil }
  /// Files from a dictionary (tests, generated repositories).
  public static func memory(_ files: [String: [UInt8]]) -> RepositoryFiles { RepositoryFiles { files[$0] } }
}

/// The desired resources of one revision, by kind and name, and the files they refer to.
public struct DesiredIndex: Sendable {
  public let resources: [ResourceID: Resource]
  public let files: RepositoryFiles
  public init(_ list: [Resource], files: RepositoryFiles = .none) {
    var m: [ResourceID: Resource] = [:]
    for r in list { m[ResourceID(r)] = r }
    resources = m
    self.files = files
  }
  public subscript(_ id: ResourceID) -> Resource? { resources[id] }
  public func resource(_ kind: Kind, _ name: String) -> Resource? { resources[ResourceID(kind, name)] }
  public func all(_ kind: Kind) -> [Resource] {
    resources.values.filter { $0.kind == kind }.sorted { $0.name < $1.name }
  }
}

/// A secret the driver resolves only when it needs it (DESIGN A5: resolved when used).
/// Whatever it is (a token, a client id), once resolved its value is masked in every text that
/// comes from outside (`Redaction.registerSecret`): a service echoing it cannot leak it.
public struct LazySecret: Sendable {
  /// Where it is configured (`integrations.youtube.clientId`, `secrets.youtube-tech-daily`), for messages.
  public let name: String
  private let resolver: @Sendable () throws -> String
  public init(name: String, _ resolve: @escaping @Sendable () throws -> String) {
    self.name = name
    self.resolver = resolve
  }
  public func resolve() throws -> String {
    let value = try resolver()
    Redaction.registerSecret(value)
    return value
  }
  public static func literal(_ name: String, _ value: String) -> LazySecret { LazySecret(name: name) { value } }
}

/// A credential a driver could not resolve (the message names the secret, never its value).
public struct SecretUnavailable: Error, Sendable, CustomStringConvertible {
  public var name: String
  public var reason: String
  public init(name: String, reason: String) {
    self.name = name
    self.reason = reason
  }
  /// The reason of a `SecretError` already starts with the reference's path: it is not repeated.
  public var description: String {
    let own = name + ": "
    return "secret \(name): " + (reason.hasPrefix(own) ? String(reason.dropFirst(own.count)) : reason)
  }
}

/// The resilient path to one service: limits, breaker, retries and the quota ledger. The
/// engine gives each driver its clients; `call` says what is being paid for.
public protocol ServiceClient: Sendable {
  func send(_ request: HTTPRequest, call: PlannedCall) async throws -> HTTPResponse
}

/// Small persistent values a driver keeps between runs (cached access tokens). Kept in the
/// state store, whose file only its owner may read.
public protocol DriverCache: Sendable {
  func value(_ key: String) throws -> (value: String, expires: Date?)?
  func setValue(_ key: String, _ value: String?, expires: Date?) throws
}

/// Cache keys whose values are credentials (OAuth access tokens, `youtube.token.<credentials>`).
/// The SQLite store keeps them in its owner-only file; a store shared by several machines
/// (PostgreSQL) keeps them in its process's memory only, and `state migrate` leaves them behind.
public enum CachedSecrets {
  public static let prefixes = ["youtube.token."]
  public static func isSecret(_ key: String) -> Bool { prefixes.contains { key.hasPrefix($0) } }
}

/// What a driver gets to observe and apply with.
public struct DriverContext: Sendable {
  public let desired: DesiredIndex
  public let pricing: Pricing
  public let cache: any DriverCache
  private let clientFor: @Sendable (String) -> any ServiceClient
  public let now: @Sendable () -> Date
  public let log: @Sendable (String) -> Void

  public init(
    desired: DesiredIndex, pricing: Pricing, cache: any DriverCache,
    client: @escaping @Sendable (String) -> any ServiceClient,
    now: @escaping @Sendable () -> Date = { Date() }, log: @escaping @Sendable (String) -> Void = { _ in }
  ) {
    self.desired = desired
    self.pricing = pricing
    self.cache = cache
    self.clientFor = client
    self.now = now
    self.log = log
  }

  /// The client for calls to `service`.
  public func client(_ service: String) -> any ServiceClient { clientFor(service) }
}

/// A resource as the engine asks a driver to observe it.
public struct ObserveTarget: Sendable {
  public var id: ResourceID
  /// The driver's desired form (nil when the resource left the repository: only owned objects remain).
  public var desired: JSONValue?
  /// External ids recorded for it in the state store.
  public var external: [String: String]
  /// The name it had before (`ytempire.io/renamed-from`) when its records are that name's: the
  /// driver finds its objects where the old name put them, and updates them in place.
  public var renamedFrom: String?
  public init(id: ResourceID, desired: JSONValue?, external: [String: String], renamedFrom: String? = nil) {
    self.id = id
    self.desired = desired
    self.external = external
    self.renamedFrom = renamedFrom
  }
}

/// What the driver saw of one resource.
public enum ObservationOutcome: Sendable {
  /// `state` is the driver's canonical form of what exists (`.null`: nothing); `external`
  /// holds ids found while observing (adoption by title), recorded when the plan is applied.
  case observed(state: JSONValue, external: [String: String])
  case failed(String)
}

/// The pure input of a diff.
public struct DiffInput: Sendable {
  public var id: ResourceID
  public var desired: JSONValue?
  public var observed: JSONValue
  public var external: [String: String]
  public var pricing: Pricing
  public init(id: ResourceID, desired: JSONValue?, observed: JSONValue, external: [String: String], pricing: Pricing) {
    self.id = id
    self.desired = desired
    self.observed = observed
    self.external = external
    self.pricing = pricing
  }
}

/// Something a driver found while looking at a resource that is not a change to make: a key
/// past its rotation age. It becomes a condition in the resource's status and a line in the plan.
public struct Finding: Sendable, Hashable, Codable {
  /// The status condition it sets to True (`RotationDue`).
  public var condition: ConditionType
  /// CamelCase reason (`KeyOverdue`).
  public var reason: ConditionReason
  /// What a person reads (`secret/data/youtube/api-key is 97 days old (maxAge 90d)`); never a secret value.
  public var message: String
  public init(condition: ConditionType, reason: ConditionReason, message: String) {
    self.condition = condition
    self.reason = reason
    self.message = message
  }
}

/// What applying one action did.
public struct ApplyOutcome: Sendable {
  /// External ids to record (`nil` value = forget the id).
  public var external: [String: String?]
  /// The resource's state after the action, in the driver's canonical observed form; the
  /// engine stores it as the latest observation (nil: unknown, observe again next time).
  public var observed: JSONValue?
  public init(external: [String: String?] = [:], observed: JSONValue?) {
    self.external = external
    self.observed = observed
  }
}

/// An integration: observes, diffs (purely) and applies. Drivers never import each other;
/// the engine knows nothing of their internals.
public protocol Driver: Sendable {
  /// Stable name: `youtube`, `configStore`, `n8n`, … (also the key in plans and the state store).
  var name: String { get }
  /// The kinds it converges.
  var kinds: Set<Kind> { get }
  /// The human name of the system (`YouTube`, `config store`).
  var displayName: String { get }

  /// The canonical desired form of `resource` (no secrets, no source marks): what is diffed,
  /// and whose digest tells whether the resource changed since it was last applied.
  func desired(_ resource: Resource, in index: DesiredIndex) -> JSONValue

  /// The calls observing `targets` will make, priced (no I/O).
  func observationCalls(_ targets: [ObserveTarget], pricing: Pricing) -> [PlannedCall]

  /// Observes the targets (batched as the API allows).
  func observe(_ targets: [ObserveTarget], context: DriverContext) async throws -> [ResourceID: ObservationOutcome]

  /// Desired vs observed → the actions that converge them. Pure: no I/O, no clock.
  func diff(_ input: DiffInput) -> [Action]

  /// Applies one action. `observed` is the resource's latest state (after earlier actions of
  /// the same run), `external` its recorded ids.
  func apply(_ action: Action, observed: JSONValue, external: [String: String], context: DriverContext) async throws -> ApplyOutcome

  /// Conditions the observed state shows (a key overdue for rotation), judged at `now`.
  /// Pure: no I/O. Every condition type a driver can report is listed in `findingTypes`, so a
  /// finding that went away is cleared from status.
  func findings(_ input: DiffInput, now: Date) -> [Finding]
  /// The condition types `findings` can report.
  var findingTypes: [ConditionType] { get }
}

extension Driver {
  public var displayName: String { name }
  public func findings(_ input: DiffInput, now: Date) -> [Finding] { [] }
  public var findingTypes: [ConditionType] { [] }
}

/// Field-level differences of two JSON values; objects recurse, anything else is compared whole.
public enum JSONDiff {
  public static func changes(_ old: JSONValue?, _ new: JSONValue?, prefix: String = "", sensitive: Set<String> = []) -> [FieldChange] {
    var out: [FieldChange] = []
    walk(old, new, prefix, sensitive, &out, depth: 0)
    return out
  }

  private static func walk(
    _ a: JSONValue?, _ b: JSONValue?, _ path: String, _ sensitive: Set<String>, _ out: inout [FieldChange], depth: Int
  ) {
    let a = (a == .null) ? nil : a
    let b = (b == .null) ? nil : b
    if a == b { return }
    // A created or deleted object shows its fields, as an update would.
    var objects: ([String: JSONValue], [String: JSONValue])?
    switch (a, b) {
    case (.object(let x)?, .object(let y)?): objects = (x, y)
    case (nil, .object(let y)?) where !y.isEmpty: objects = ([:], y)
    case (.object(let x)?, nil) where !x.isEmpty: objects = (x, [:])
    default: objects = nil
    }
    if depth < 32, let (x, y) = objects {
      for k in Set(x.keys).union(y.keys).sorted() {
        walk(x[k], y[k], path.isEmpty ? k : path + "." + k, sensitive, &out, depth: depth + 1)
      }
      return
    }
    out.append(FieldChange(path: path, old: a, new: b, sensitive: sensitive.contains(path)))
  }
}

// MARK: the resilient client

/// `ServiceClient` over the resilience layer: the call's operation and channel go to the
/// quota ledger, everything else (breaker, limits, retries) is `ResilientHTTP`'s.
public struct ResilientServiceClient: ServiceClient {
  public let http: ResilientHTTP
  public init(_ http: ResilientHTTP) { self.http = http }
  public func send(_ request: HTTPRequest, call: PlannedCall) async throws -> HTTPResponse {
    try await http.send(request, operation: call.quota == nil ? nil : call.operation, channel: call.channel)
  }
}

extension Task where Failure == any Error {
  /// The task's value, for work a driver shares between the calls of one run (a token refresh,
  /// a tag lookup) and runs as its own task: awaiting `value` alone is not cancelled with the
  /// waiter, so a deadline or a shutdown would wait for the shared call to time out. Cancelling
  /// a waiter cancels the work; its other waiters belong to the same run and are cancelled too.
  public var valueCancelledWithWaiter: Success {
    get async throws {
      try await withTaskCancellationHandler {
        try await value
      } onCancel: {
        cancel()
      }
    }
  }
}
