import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import Reconciler
import Sandbox
import Synchronization
import TestSupport

@testable import VaultDriver

/// The example repository, loaded as `ytempire validate` does.
enum Example {
  static var resources: [Resource] { ExampleEmpire.resources }
  static var policy: SecurityPolicySpec { resources.first { $0.kind == .securityPolicy }!.securityPolicy! }
}

/// The example with its SecurityPolicy replaced by `yaml` (a SecurityPolicy document).
func example(replacingPolicyWith yaml: String) -> [Resource] {
  Example.resources.filter { $0.kind != .securityPolicy } + decode(yaml)
}

func tempDir() -> String {
  let d = NSTemporaryDirectory() + "ytempire-vault-" + UUID().uuidString
  try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
  return d
}

/// The real engine with the Vault driver over libcurl, a SQLite state store in a temporary
/// directory and the in-process sandbox seeded from examples/empire.
final class VaultRig: Sendable {
  let sb: SandboxServer
  let dir = tempDir()
  let store: SQLiteStateStore
  let http = CurlHTTPClient()
  let token: String

  init(_ sb: SandboxServer, token: String? = nil) throws {
    self.sb = sb
    self.token = token ?? sb.credentials.vaultToken
    store = try SQLiteStateStore(stateDir: dir)
  }

  var driver: VaultDriver {
    VaultDriver(
      config: VaultDriverConfig(
        endpoint: sb.vaultURL, token: .literal("integrations.vault.token", token),
        auditFilePath: "/var/log/vault/test-audit.log"))
  }

  func engine(_ configure: (inout EngineOptions) -> Void = { _ in }) -> Engine {
    var o = EngineOptions()
    configure(&o)
    return Engine(drivers: [driver], store: store, transport: http, options: o)
  }

  /// plan → apply → status record, as `ytempire apply` does.
  @discardableResult
  func apply(_ resources: [Resource], revision: String = "r1", _ configure: (inout EngineOptions) -> Void = { _ in }) async throws -> (
    Plan, ApplyReport
  ) {
    let e = engine(configure)
    let plan = try await e.plan(resources, revision: revision)
    let report = try await e.apply(plan, desired: resources)
    try StatusBook.record(plan: plan, report: report, desired: resources, store: store, now: Date())
    return (plan, report)
  }

  func plan(_ resources: [Resource], revision: String = "r1", _ configure: (inout EngineOptions) -> Void = { _ in }) async throws -> Plan {
    try await engine(configure).plan(resources, revision: revision)
  }

  /// A call to the sandbox's Vault as an operator would make it (with the root token).
  @discardableResult
  func vault(_ method: String, _ path: String, _ body: String? = nil) async throws -> HTTPResponse {
    var h: HTTPHeaders = ["X-Vault-Token": sb.credentials.vaultToken]
    if body != nil { h.add("Content-Type", "application/json") }
    return try await http.execute(
      HTTPRequest(method: method, url: sb.vaultURL + "/v1/" + path, headers: h, body: body.map { Array($0.utf8) }))
  }

  func policyText(_ name: String) async throws -> String? {
    let r = try await vault("GET", "sys/policies/acl/" + name)
    guard r.status == 200 else { return nil }
    return try JSONValue.parse(r.body)["data"]?["policy"]?.string
  }

  /// Sandbox call counts of Vault requests (`GET /v1/…` → n), excluding the operator's own calls before `since`.
  func vaultCalls() -> [String: Int] {
    sb.callCounts.filter { $0.key.hasPrefix("vault ") }
  }

  static func with(token: String? = nil, _ body: (VaultRig) async throws -> Void) async throws {
    var o = SandboxOptions()
    o.seedFrom = Repo.examples
    let sb = try await SandboxServer.start(o)
    do { try await body(try VaultRig(sb, token: token)) } catch {
      await sb.stop()
      throw error
    }
    await sb.stop()
  }
}

/// A scripted ServiceClient for unit tests over the transport protocol: answers by `METHOD path`.
final class ScriptedClient: ServiceClient {
  let answers: Mutex<[String: HTTPResponse]>
  let sent = Mutex<[(String, PlannedCall)]>([])
  init(_ answers: [String: HTTPResponse]) { self.answers = Mutex(answers) }
  func send(_ request: HTTPRequest, call: PlannedCall) async throws -> HTTPResponse {
    let path = request.url.components(separatedBy: "/v1/").last ?? request.url
    let key = "\(request.method) \(path)"
    sent.withLock { $0.append((key, call)) }
    return answers.withLock { $0[key] } ?? HTTPResponse(status: 404, body: Array(#"{"errors":[]}"#.utf8))
  }
  var keys: [String] { sent.withLock { $0.map(\.0) } }
}

final class NoCache: DriverCache {
  func value(_ key: String) throws -> (value: String, expires: Date?)? { nil }
  func setValue(_ key: String, _ value: String?, expires: Date?) throws {}
}

func json(_ status: Int, _ s: String) -> HTTPResponse { HTTPResponse(status: status, body: Array(s.utf8)) }
