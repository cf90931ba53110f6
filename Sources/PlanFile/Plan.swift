import DriverKit
import EmpireModel
import Foundation

/// The outcome of planning one revision: what apply would do, what it costs, and what it
/// would not do (deferred, held back, refused, unreconciled). Written by `plan --out` as
/// versioned JSON with a sha256 digest; `apply plan.json` reads it back.
public struct Plan: Sendable, Codable, Equatable {
  public static let formatVersion = 1

  /// Why an action will not run now.
  public struct Deferral: Sendable, Codable, Equatable {
    /// Why an action waits.
    public enum Reason: String, Sendable, Codable, CaseIterable {
      /// The quota cannot pay for it before its reset.
      case quota
      /// A sync window holds it.
      case syncWindow
      /// An earlier attempt's answer was lost; the service may still execute it.
      case outcomeUnknown
      /// A delete of an owned object that still holds content (a playlist's videos),
      /// blocked without `--force` or `ytempire.io/delete-nonempty: "true"`.
      case nonEmpty

      /// The reason of the resource's `Deferred` condition.
      public var condition: ConditionReason {
        switch self {
        case .quota: .quota
        case .syncWindow: .syncWindow
        case .outcomeUnknown: .outcomeUnknown
        case .nonEmpty: .deleteBlocked
        }
      }
    }
    public var reason: Reason
    public var message: String
    /// When it can run (the quota's reset, the window's opening).
    public var eta: Date?

    package init(reason: Reason, message: String, eta: Date?) {
      self.reason = reason
      self.message = message
      self.eta = eta
    }
  }

  public struct PlannedAction: Sendable, Codable, Equatable {
    public var action: Action
    public var deferred: Deferral?
    /// The resource's desired form changed since it was last applied (false: drift correction).
    public var fromGit: Bool

    package init(action: Action, deferred: Deferral?, fromGit: Bool) {
      self.action = action
      self.deferred = deferred
      self.fromGit = fromGit
    }
  }

  /// A resource as the summary counts it: one line however many integrations it spans.
  public struct ResourceChange: Sendable, Codable, Equatable {
    public enum Change: String, Sendable, Codable { case create, update, delete, none }
    public var id: ResourceID
    public var change: Change
    /// Drift found in an unchanged resource: the fields that differ.
    public var driftedFields: [String]
    /// `ytempire.io/drift: report`: drift is reported, not corrected.
    public var driftReportOnly: Bool
    /// Deletes skipped because pruning is off for it.
    public var pruneHeld: [String]
    /// Integrations that converge it in this plan.
    public var drivers: [String]
    /// Observation failed: why (the resource is not planned).
    public var observationError: String?
    /// Conditions the observed state shows (a key due for rotation).
    public var findings: [Finding]

    package init(
      id: ResourceID, change: Change, driftedFields: [String], driftReportOnly: Bool, pruneHeld: [String],
      drivers: [String], observationError: String?, findings: [Finding]
    ) {
      self.id = id
      self.change = change
      self.driftedFields = driftedFields
      self.driftReportOnly = driftReportOnly
      self.pruneHeld = pruneHeld
      self.drivers = drivers
      self.observationError = observationError
      self.findings = findings
    }
  }

  public struct Observation: Sendable, Codable, Equatable {
    /// Resources observed now / taken from the state store.
    public var observedNow: Int
    public var fromStore: Int
    /// Age in seconds of the oldest stored observation used.
    public var oldestStoredAge: Double?
    public var refresh: String
    public var calls: [PlannedCall]
    /// sha256 over the observed states the actions were computed from.
    public var digest: String

    package init(observedNow: Int, fromStore: Int, oldestStoredAge: Double?, refresh: String, calls: [PlannedCall], digest: String) {
      self.observedNow = observedNow
      self.fromStore = fromStore
      self.oldestStoredAge = oldestStoredAge
      self.refresh = refresh
      self.calls = calls
      self.digest = digest
    }
  }

  public struct QuotaUse: Sendable, Codable, Equatable {
    public var rateLimit: String
    public var service: String
    /// The quota's size (units per window).
    public var units: Int
    /// Spent by this plan's observations (already paid).
    public var observationUnits: Int
    /// What the planned (non-deferred) actions cost.
    public var actionUnits: Int
    /// What deferred actions would cost.
    public var deferredUnits: Int
    /// What the ledger allows now (after the observation), before the actions.
    public var available: Int
    public var resetsAt: Date?

    package init(
      rateLimit: String, service: String, units: Int, observationUnits: Int, actionUnits: Int,
      deferredUnits: Int, available: Int, resetsAt: Date?
    ) {
      self.rateLimit = rateLimit
      self.service = service
      self.units = units
      self.observationUnits = observationUnits
      self.actionUnits = actionUnits
      self.deferredUnits = deferredUnits
      self.available = available
      self.resetsAt = resetsAt
    }
  }

  public struct Unreconciled: Sendable, Codable, Equatable {
    public var id: ResourceID
    public var integration: String
    public var reason: String

    package init(id: ResourceID, integration: String, reason: String) {
      self.id = id
      self.integration = integration
      self.reason = reason
    }
  }

  public struct SafetyViolation: Sendable, Codable, Equatable {
    /// maxDeletePercent | maxUpdatePercent
    public var rule: String
    public var message: String

    package init(rule: String, message: String) {
      self.rule = rule
      self.message = message
    }
  }

  public var version = Plan.formatVersion
  public var revision: String
  public var createdAt: Date
  public var actions: [PlannedAction]
  public var resources: [ResourceChange]
  public var observation: Observation
  public var quotas: [QuotaUse]
  public var unreconciled: [Unreconciled]
  public var safety: [SafetyViolation]
  /// Targets the plan was limited to (empty: everything).
  public var targets: [ResourceID]
  /// Desired digests of every planned resource per driver (`driver|Kind/name` → sha256), recorded on apply.
  public var desiredDigests: [DriverResourceKey: String]
  /// Ids found while observing (adoption by title), recorded when the plan is applied.
  public var adopted: [DriverResourceKey: [String: String]]
  /// Condition types the drivers of this plan report as findings (cleared when absent).
  public var findingTypes: [ConditionType] = []
  /// sha256 of this plan with `digest` empty.
  public var digest: String = ""

  package init(
    version: Int = Plan.formatVersion, revision: String, createdAt: Date, actions: [PlannedAction], resources: [ResourceChange],
    observation: Observation, quotas: [QuotaUse], unreconciled: [Unreconciled], safety: [SafetyViolation],
    targets: [ResourceID], desiredDigests: [DriverResourceKey: String], adopted: [DriverResourceKey: [String: String]],
    findingTypes: [ConditionType] = [], digest: String = ""
  ) {
    self.version = version
    self.revision = revision
    self.createdAt = createdAt
    self.actions = actions
    self.resources = resources
    self.observation = observation
    self.quotas = quotas
    self.unreconciled = unreconciled
    self.safety = safety
    self.targets = targets
    self.desiredDigests = desiredDigests
    self.adopted = adopted
    self.findingTypes = findingTypes
    self.digest = digest
  }

  public var runnable: [PlannedAction] { actions.filter { $0.deferred == nil } }
  /// Resources that could not be observed: nothing is planned for them, and the run is not a success.
  public var unobserved: [ResourceChange] { resources.filter { $0.observationError != nil } }
  public var hasChanges: Bool { !actions.isEmpty }

  public func count(_ c: ResourceChange.Change) -> Int { resources.count { $0.change == c } }

  // MARK: file form

  package static func encoder() -> JSONEncoder {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    e.dateEncodingStrategy = .iso8601
    return e
  }

  /// Fills in `digest`: HMAC-SHA256 of this plan (with `digest` empty), keyed by the state
  /// store's plan key, so a plan edited and re-hashed, or made against another state
  /// directory, does not verify.
  public mutating func seal(key: [UInt8]) {
    digest = ""
    let body = Array((try? Self.encoder().encode(self)) ?? Data())
    digest = "hmac-sha256:" + Digest.hmacSHA256Hex(key: key, body)
  }

  public func json() -> String {
    String(decoding: (try? Self.encoder().encode(self)) ?? Data(), as: UTF8.self)
  }

  /// Reads a plan file: the version must be known and the keyed digest must match the content.
  public static func read(_ bytes: [UInt8], file: String, key: [UInt8]) throws -> Plan {
    guard bytes.count <= maxFileBytes else { throw PlanError("\(file): plan file larger than 64 MiB") }
    let d = JSONDecoder()
    d.dateDecodingStrategy = .iso8601
    struct Head: Decodable { var version: Int? }
    guard let head = try? d.decode(Head.self, from: Data(bytes)) else { throw PlanError("\(file): not a ytempire plan (invalid JSON)") }
    guard head.version == formatVersion else {
      throw PlanError(
        "\(file): plan format version \(head.version.map(String.init) ?? "missing"); this ytempire reads version \(formatVersion)")
    }
    var p: Plan
    do { p = try d.decode(Plan.self, from: Data(bytes)) } catch {
      throw PlanError("\(file): not a ytempire plan: \(PlanError.describe(error))")
    }
    let claimed = p.digest
    p.seal(key: key)
    guard Digest.constantTimeEqual(p.digest, claimed) else {
      throw PlanError(
        "\(file): plan was not made here or was edited: its digest does not verify with this state directory's plan key (make a new plan with `ytempire plan --out`)"
      )
    }
    return p
  }
}

public struct PlanError: Error, Sendable, CustomStringConvertible {
  public var message: String
  public init(_ m: String) { message = m }
  public var description: String { message }

  package static func describe(_ e: any Error) -> String {
    switch e as? DecodingError {
    case .keyNotFound(let k, let c)?: return "missing \((c.codingPath + [k]).map(\.stringValue).joined(separator: "."))"
    case .typeMismatch(_, let c)?, .valueNotFound(_, let c)?, .dataCorrupted(let c)?:
      return "bad value at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
    default: return "unreadable"
    }
  }
}

extension Plan {
  /// The largest plan file read.
  public static let maxFileBytes = 64 << 20

  /// Reads and verifies the plan file at `path` (`apply PLAN.json`): a regular file whose size
  /// is checked on the opened descriptor before anything is read, then read with that bound
  /// (`RegularFile.read`), so a huge or sparse file is refused at once without being read.
  public static func read(path: String, key: [UInt8]) throws -> Plan {
    let bytes: [UInt8]
    do { bytes = try RegularFile.read(path, maxBytes: maxFileBytes) } catch {
      switch error {
      case .missing: throw PlanError("\(path): no such plan file")
      case .unreadable(let why): throw PlanError("\(path): cannot read the plan file: \(why)")
      case .notRegular(let what): throw PlanError("\(path): is \(what), not a plan file; only a regular file is read")
      case .tooLarge(let size):
        throw PlanError("\(path): plan file of \(size) bytes, larger than the \(maxFileBytes >> 20) MiB a plan may have; nothing was read")
      }
    }
    return try read(bytes, file: path, key: key)
  }
}
