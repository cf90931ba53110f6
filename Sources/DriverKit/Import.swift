import EmpireModel
import Foundation
import Synchronization

// `ytempire import` (DESIGN A10 "Import"): a driver that can list what exists in its system
// (not only what the repository names) writes it back as manifests. It reads with its own
// observation code and canonical forms, so what an import records is what the next plan
// compares against: no second reader per API.

/// What `ytempire import` asks the drivers for.
public struct ImportRequest: Sendable {
  /// The kinds to import (every kind a driver can import when empty).
  public var kinds: Set<Kind>
  /// Kinds named with `--kind`: a driver that imports only its own objects by default (n8n's
  /// workflows tagged `ytempire`) imports every object of such a kind.
  public var explicitKinds: Set<Kind>
  /// YouTube credentials (names of the configuration's `secrets:`) to import channels with.
  public var youtubeCredentials: [String]
  public init(kinds: Set<Kind> = [], explicitKinds: Set<Kind> = [], youtubeCredentials: [String] = []) {
    self.kinds = kinds
    self.explicitKinds = explicitKinds
    self.youtubeCredentials = youtubeCredentials
  }
  public func wants(_ kind: Kind) -> Bool { kinds.isEmpty || kinds.contains(kind) }
}

/// One resource found by an import, as the driver that found it writes it.
public struct ImportedResource: Sendable {
  public var kind: Kind
  /// The name it should get (made unique among the import's names by the workspace; the
  /// driver's `external` and `observed` do not depend on it).
  public var name: String
  public var labels: [String: String]
  /// The manifest's `spec`, in the model's field names.
  public var spec: JSONValue
  /// Lines written as a comment above the manifest: where it came from, what the system does
  /// not hold (filled with defaults), what could not be imported and why.
  public var notes: [String]
  /// Files the manifest refers to, by path relative to the manifest's folder (a workflow's JSON).
  public var files: [String: [UInt8]]
  /// External ids `--adopt` records (the same keys the driver's apply records).
  public var external: [String: String]
  /// The driver's canonical observed state for it (`--adopt` stores it as the latest observation).
  public var observed: JSONValue
  /// Values the driver remembers between runs (`DriverCache`), recorded with `--adopt`.
  public var cache: [String: String]

  public init(
    kind: Kind, name: String, labels: [String: String] = [:], spec: JSONValue, notes: [String] = [],
    files: [String: [UInt8]] = [:], external: [String: String] = [:], observed: JSONValue, cache: [String: String] = [:]
  ) {
    self.kind = kind
    self.name = name
    self.labels = labels
    self.spec = spec
    self.notes = notes
    self.files = files
    self.external = external
    self.observed = observed
    self.cache = cache
  }
}

/// Something that exists but that the model cannot express (a cache rule with an action the
/// model has no field for): listed in the output and in a comment, never silently dropped.
public struct NotImported: Sendable, Hashable, Codable {
  /// What it is, as a person finds it in the system (`Cloudflare zone example.com: rule "Bypass admin"`).
  public var object: String
  public var reason: String
  public init(object: String, reason: String) {
    self.object = object
    self.reason = reason
  }
}

/// What one driver's import found.
public struct ImportResult: Sendable {
  public var resources: [ImportedResource]
  public var notImported: [NotImported]
  /// Failures that stopped part of the import (a credential that does not refresh), one line each.
  public var errors: [String]
  public init(resources: [ImportedResource] = [], notImported: [NotImported] = [], errors: [String] = []) {
    self.resources = resources
    self.notImported = notImported
    self.errors = errors
  }
}

/// A driver that can import what exists in its system.
public protocol Importer: Driver {
  /// The kinds it imports.
  var importKinds: Set<Kind> { get }
  /// The calls importing will make at least, priced, before any of them is made. A call
  /// whose count depends on what is found (a further page) is priced when it is known, and
  /// made only when `budget` still allows it.
  func importCalls(_ request: ImportRequest, pricing: Pricing) -> [PlannedCall]
  /// Reads what exists. `budget` is charged for every priced call before it is sent.
  func discover(_ request: ImportRequest, budget: ImportBudget, context: DriverContext) async throws -> ImportResult
}

/// The units an import may spend (`--max-units`), charged before each priced call.
public final class ImportBudget: Sendable {
  private let state: Mutex<(spent: Int, limit: Int?)>
  public init(limit: Int?) { state = Mutex((0, limit)) }
  /// Charges `call` and returns true when the limit allows it; charges nothing otherwise.
  public func charge(_ call: PlannedCall) -> Bool {
    state.withLock { s in
      if let l = s.limit, s.spent + call.units > l { return false }
      s.spent += call.units
      return true
    }
  }
  public var spent: Int { state.withLock { $0.spent } }
  public var limit: Int? { state.withLock { $0.limit } }
}

/// A further call the import's `--max-units` does not allow.
public struct ImportBudgetExceeded: Error, Sendable, CustomStringConvertible {
  public var call: PlannedCall
  public var limit: Int
  public init(call: PlannedCall, limit: Int) {
    self.call = call
    self.limit = limit
  }
  public var description: String {
    "\(call.name) (\(call.units) unit\(call.units == 1 ? "" : "s")) would spend more than --max-units \(limit); not sent"
  }
}

/// Import names: lower-case, hyphenated, at most 63 bytes, unique within a set.
public enum ImportNames {
  /// `"AI Explained!"` → `ai-explained`; a title with no letter or digit → `fallback`.
  public static func slug(_ title: String, fallback: String) -> String {
    var out = ""
    var dash = false
    for ch in title.lowercased().unicodeScalars {
      if ch.isASCII, CharacterSet.alphanumerics.contains(ch) {
        if dash && !out.isEmpty { out.append("-") }
        out.unicodeScalars.append(ch)
        dash = false
      } else {
        dash = true
      }
      if out.utf8.count >= 50 { break }
    }
    while out.hasSuffix("-") { out.removeLast() }
    return out.isEmpty ? fallback : out
  }

  /// `base`, else `base-2`, `base-3`, … (never past 63 bytes), recorded in `taken`.
  public static func unique(_ base: String, in taken: inout Set<String>) -> String {
    var b = String(base.prefix(56))
    while b.hasSuffix("-") { b.removeLast() }
    if b.isEmpty { b = "imported" }
    var name = b
    var i = 2
    while taken.contains(name) {
      name = "\(b)-\(i)"
      i += 1
    }
    taken.insert(name)
    return name
  }
}
