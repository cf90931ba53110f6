/// The words the engine, the drivers, status files and plans share, as types: a condition's
/// type and reason, and the key of one driver's view of one resource. Each is a string on the
/// wire (status YAML, plan JSON), checked where it is decoded; in code it is a named constant,
/// so a misspelt condition is a compile error rather than a status nobody reads.

/// A status condition's type (`Ready`, `Stalled`, `RotationDue`). The engine's own are below;
/// a driver declares the ones its findings set in an extension, and lists them in `findingTypes`.
public struct ConditionType: RawRepresentable, Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
  public let rawValue: String
  public init(rawValue: String) { self.rawValue = rawValue }
  public init(_ rawValue: String) { self.rawValue = rawValue }
  public var description: String { rawValue }
  public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

  /// Whether the resource matches the desired state of the last revision applied.
  public static let ready = ConditionType("Ready")
  /// Whether a reconcile of the resource is in progress.
  public static let reconciling = ConditionType("Reconciling")
  /// The resource cannot progress without a change in git or a person (a rejected request, a
  /// credential acting for another channel).
  public static let stalled = ConditionType("Stalled")
  /// Whether the observed state differed from the desired state outside a change in git.
  public static let drifted = ConditionType("Drifted")
  /// Some of the resource's actions wait (quota, sync window, unknown outcome, blocked delete).
  public static let deferred = ConditionType("Deferred")

  /// The order conditions are listed in a status file: the engine's, then the drivers' by name.
  public static let engineOrder: [ConditionType] = [.ready, .reconciling, .stalled, .drifted, .deferred]
}

/// A condition's status, as Kubernetes writes it.
public enum ConditionStatus: String, Sendable, Codable, Hashable {
  case `true` = "True"
  case `false` = "False"
  case unknown = "Unknown"
}

/// A condition's CamelCase reason (`Converged`, `ApplyFailed`, `KeyOverdue`).
public struct ConditionReason: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
  public let rawValue: String
  public init(rawValue: String) { self.rawValue = rawValue }
  public init(_ rawValue: String) { self.rawValue = rawValue }
  public var description: String { rawValue }

  // Ready
  public static let converged = ConditionReason("Converged")
  public static let observationFailed = ConditionReason("ObservationFailed")
  public static let applyFailed = ConditionReason("ApplyFailed")
  public static let deferred = ConditionReason("Deferred")
  public static let driftReported = ConditionReason("DriftReported")
  public static let notReconciled = ConditionReason("NotReconciled")
  // Reconciling
  public static let idle = ConditionReason("Idle")
  // Drifted
  public static let reported = ConditionReason("Reported")
  public static let notCorrected = ConditionReason("NotCorrected")
  public static let corrected = ConditionReason("Corrected")
  public static let noDrift = ConditionReason("NoDrift")
  // Stalled
  public static let rejectedByService = ConditionReason("RejectedByService")
  // Deferred
  public static let quota = ConditionReason("Quota")
  public static let syncWindow = ConditionReason("SyncWindow")
  public static let outcomeUnknown = ConditionReason("OutcomeUnknown")
  public static let deleteBlocked = ConditionReason("DeleteBlocked")
}

/// One driver's view of one resource (`youtube|Channel/tech-daily`): a resource may be
/// converged by more than one driver, and the state store, the journal and a plan's recorded
/// digests and adopted ids are kept per pair. The plan file writes it as that string; reading
/// one back checks the form (a malformed key is not a plan).
public struct DriverResourceKey: Hashable, Comparable, Sendable, Codable, CodingKeyRepresentable, CustomStringConvertible {
  public var driver: String
  public var resource: ResourceID

  public init(_ driver: String, _ resource: ResourceID) {
    self.driver = driver
    self.resource = resource
  }

  /// Parses `driver|Kind/name`; nil for anything else.
  public init?(parsing s: String) {
    guard let bar = s.firstIndex(of: "|") else { return nil }
    let driver = String(s[..<bar])
    guard !driver.isEmpty, !driver.contains("/"), let id = ResourceID(parsing: String(s[s.index(after: bar)...])) else { return nil }
    self.init(driver, id)
  }

  public var description: String { "\(driver)|\(resource)" }
  public static func < (a: Self, b: Self) -> Bool { (a.driver, a.resource) < (b.driver, b.resource) }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.singleValueContainer()
    let s = try c.decode(String.self)
    guard let k = Self(parsing: s) else {
      throw DecodingError.dataCorruptedError(in: c, debugDescription: "\(s.prefix(200)) is not driver|Kind/name")
    }
    self = k
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.singleValueContainer()
    try c.encode(description)
  }

  public var codingKey: any CodingKey { Key(stringValue: description) }
  public init?<T: CodingKey>(codingKey: T) { self.init(parsing: codingKey.stringValue) }

  private struct Key: CodingKey {
    var stringValue: String
    init(stringValue: String) { self.stringValue = stringValue }
    var intValue: Int? { nil }
    init?(intValue: Int) { nil }
  }
}
