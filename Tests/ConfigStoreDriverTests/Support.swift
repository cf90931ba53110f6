import ConfigStoreDriver
// HTTPRequest/HTTPResponse of the ServiceClient protocol (DriverKit depends on CurlHTTP; the stub below never sends).
import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import TestSupport
import Testing

/// The two databases every behaviour is checked on.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
  case sqlite, postgres
  var testDescription: String { rawValue }

  /// SQLite always; PostgreSQL when its binaries are installed (the "PostgreSQL is installed"
  /// test says why it is skipped otherwise).
  static let testable: [Backend] = PostgresServer.isAvailable ? [.sqlite, .postgres] : [.sqlite]
}

/// A fresh, empty config database of one backend, and SQL through the database's own client
/// (psql, or Python's sqlite3) — never through the driver under test.
final class Store: Sendable {
  let backend: Backend
  let url: String
  private let dir: TemporaryDirectory
  let server: PostgresServer?

  init(_ backend: Backend) throws {
    self.backend = backend
    dir = try TemporaryDirectory("ytempire-configstore")
    switch backend {
    case .sqlite:
      server = nil
      url = "sqlite://" + dir.sub("state/runtime.sqlite")
    case .postgres:
      let s = try PostgresServer.start()
      server = s
      url = s.url
    }
  }

  var sqlitePath: String { dir.sub("state/runtime.sqlite") }

  func driver(password: LazySecret? = nil) throws -> ConfigStoreDriver { try ConfigStoreDriver(url: url, password: password) }

  static let python = #"""
    import sqlite3, sys
    c = sqlite3.connect(sys.argv[1])
    if sys.argv[3] == "script":
        c.executescript(sys.argv[2])
    else:
        for row in c.execute(sys.argv[2]):
            print("\t".join("" if v is None else str(v) for v in row))
    c.commit()
    """#

  /// Rows of a query, fields as text (NULL is "").
  func query(_ sql: String) throws -> [[String]] {
    switch backend {
    case .postgres: return try server!.psql(sql)
    case .sqlite:
      let out = try Processes.run(["python3", "-c", Store.python, sqlitePath, sql, "query"])
      return out.stdout.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
    }
  }

  /// Statements (several allowed) that return nothing.
  func exec(_ sql: String) throws {
    switch backend {
    case .postgres: try server!.psql(sql)
    case .sqlite: try Processes.run(["python3", "-c", Store.python, sqlitePath, sql, "script"])
    }
  }

  /// Every value of every row of the table, as text.
  func dump(_ table: String) throws -> [[String]] { try query("SELECT * FROM \(table)") }

  func stop() { server?.stop() }
}

enum Fixtures {
  static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

  /// examples/empire, through DirectorySource and the validator, as `ytempire` reads it.
  static let example: [Resource] = {
    let listing = DirectorySource.list(root: packageRoot.appendingPathComponent("examples/empire").path, displayRoot: "")
    let report = ManifestLoader.validate(listing.sources)
    precondition(report.isValid, "examples/empire is invalid: \(report.diagnostics)")
    return report.resources
  }()

  static func resource(_ kind: Kind, _ name: String, in list: [Resource] = example) -> Resource {
    list.first { $0.kind == kind && $0.name == name }!
  }

  static func replacing(_ r: Resource, in list: [Resource]) -> [Resource] {
    list.map { $0.kind == r.kind && $0.name == r.name ? r : $0 }
  }
}

struct NoCache: DriverCache {
  let canary: String
  func value(_ key: String) throws -> (value: String, expires: Date?)? { (canary, nil) }
  func setValue(_ key: String, _ value: String?, expires: Date?) throws {}
}

struct NoClient: ServiceClient {
  struct Refused: Error {}
  func send(_ request: HTTPRequest, call: PlannedCall) async throws -> HTTPResponse { throw Refused() }
}

/// A small engine: observe → diff → apply, the way the reconciler drives a driver.
struct Harness {
  let driver: ConfigStoreDriver
  var resources: [Resource]
  var canary = "CANARY-secret-value-1f9e"

  init(_ driver: ConfigStoreDriver, _ resources: [Resource] = Fixtures.example) {
    self.driver = driver
    self.resources = resources
  }

  var index: DesiredIndex { DesiredIndex(resources) }
  var pricing: Pricing { Pricing(index) }
  var ours: [Resource] { resources.filter { driver.kinds.contains($0.kind) } }

  var context: DriverContext {
    DriverContext(
      desired: index, pricing: pricing, cache: NoCache(canary: canary), client: { _ in NoClient() },
      now: { Date(timeIntervalSince1970: 1_790_000_000) }, log: { _ in })
  }

  /// `renamedFrom`: the old names the engine passes for resources renamed with `ytempire.io/renamed-from`.
  func targets(removed: [ResourceID] = [], renamedFrom: [ResourceID: String] = [:]) -> [ObserveTarget] {
    let idx = index
    return ours.map {
      ObserveTarget(id: ResourceID($0), desired: driver.desired($0, in: idx), external: [:], renamedFrom: renamedFrom[ResourceID($0)])
    }
      + removed.map { ObserveTarget(id: $0, desired: nil, external: [:]) }
  }

  /// Observes every target and diffs it; returns the actions and the observed states.
  func plan(removed: [ResourceID] = [], renamedFrom: [ResourceID: String] = [:]) async throws -> (
    actions: [Action], observed: [ResourceID: JSONValue]
  ) {
    let ts = targets(removed: removed, renamedFrom: renamedFrom)
    let outcomes = try await driver.observe(ts, context: context)
    var observed: [ResourceID: JSONValue] = [:]
    var actions: [Action] = []
    for t in ts {
      guard case .observed(let state, _)? = outcomes[t.id] else {
        Issue.record("\(t.id) was not observed: \(String(describing: outcomes[t.id]))")
        continue
      }
      observed[t.id] = state
      actions += driver.diff(DiffInput(id: t.id, desired: t.desired, observed: state, external: [:], pricing: pricing))
    }
    return (actions.sorted { $0.id < $1.id }, observed)
  }

  /// Applies the actions one by one; returns each resource's state after its action.
  @discardableResult
  func apply(_ actions: [Action], observed: [ResourceID: JSONValue]) async throws -> [ResourceID: JSONValue] {
    var after: [ResourceID: JSONValue] = [:]
    for a in actions {
      let o = try await driver.apply(a, observed: observed[a.resource] ?? .null, external: [:], context: context)
      after[a.resource] = o.observed
    }
    return after
  }

  /// Plans and applies everything; returns the actions applied.
  @discardableResult
  func converge(removed: [ResourceID] = []) async throws -> [Action] {
    let (actions, observed) = try await plan(removed: removed)
    try await apply(actions, observed: observed)
    return actions
  }
}

extension Resource {
  func withChannel(_ edit: (inout ChannelSpec) -> Void) -> Resource {
    var r = self
    if case .channel(var c) = r.spec {
      edit(&c)
      r.spec = .channel(c)
    }
    return r
  }
  func withPolicy(_ edit: (inout SecurityPolicySpec) -> Void) -> Resource {
    var r = self
    if case .securityPolicy(var s) = r.spec {
      edit(&s)
      r.spec = .securityPolicy(s)
    }
    return r
  }
}
