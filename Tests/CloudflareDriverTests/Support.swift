import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import CloudflareDriver
@testable import Sandbox

/// The example repository, loaded as `ytempire validate` does, and its files.
enum Example {
  static let resources: [Resource] = load(Repo.examples)

  static func load(_ dir: String) -> [Resource] {
    let listing = DirectorySource.list(root: dir, displayRoot: "")
    let files = listing.files
    let report = ManifestLoader.validate(
      listing.sources, options: LoadOptions(), extraDiagnostics: listing.diagnostics,
      fileExists: { files.contains($0) })
    precondition(report.isValid, "\(dir) does not validate: " + report.diagnostics.map(\.rendered).joined(separator: "\n"))
    return report.resources
  }

  static func files(_ dir: String = Repo.examples, overrides: [String: String] = [:]) -> RepositoryFiles {
    RepositoryFiles { path in
      if let o = overrides[path] { return Array(o.utf8) }
      guard !path.contains(".."), let d = FileManager.default.contents(atPath: dir + "/" + path) else { return nil }
      return Array(d)
    }
  }

  static var zones: [Resource] { resources.filter { $0.kind == .cdnZone }.sorted { $0.name < $1.name } }
  static func script(_ name: String) -> String {
    String(decoding: FileManager.default.contents(atPath: Repo.examples + "/cdn/workers/\(name).js") ?? Data(), as: UTF8.self)
  }
}

/// The example's CDNZones with `edit` applied to their YAML text (for one-field changes).
func examples(editing file: String, _ edit: (String) -> String) -> [Resource] {
  let others = Example.resources.filter { $0.kind != .cdnZone }
  let cdn = try! FileManager.default.contentsOfDirectory(atPath: Repo.examples + "/cdn").filter { $0.hasSuffix(".yaml") }.sorted()
  var texts: [String] = []
  for f in cdn {
    let t = String(decoding: FileManager.default.contents(atPath: Repo.examples + "/cdn/" + f)!, as: UTF8.self)
    texts.append(f == file ? edit(t) : t)
  }
  return others + decode(texts.joined(separator: "\n---\n"))
}

/// One call the fake saw.
struct Seen: Sendable {
  var operation: String
  var method: String
  var path: String
  var authorization: String?
}

/// A Cloudflare behind `ServiceClient`, in process: the sandbox's emulator without its HTTP
/// server (the same code the end-to-end tests reach over libcurl), answering errors as
/// responses as a plain client would. `override` answers a request instead (error shapes);
/// `beforeSend` runs before a request reaches the emulator (concurrent edits).
final class FakeCloudflare: ServiceClient {
  static let base = "https://cf.test/client/v4"
  let core: SandboxCore
  let seen = Mutex<[Seen]>([])
  let override = Mutex<(@Sendable (HTTPRequest, PlannedCall) -> HTTPResponse?)?>(nil)
  let beforeSend = Mutex<(@Sendable (PlannedCall, SandboxCore) -> Void)?>(nil)

  init(seeding resources: [Resource] = Example.resources) {
    var w = World()
    _ = Seeder.seed(resources, into: &w, now: Date(timeIntervalSince1970: 1_780_000_000))
    core = SandboxCore(world: w, clock: SandboxClock({ Date(timeIntervalSince1970: 1_780_000_000) }), store: nil, seed: SeedReport())
  }

  func send(_ request: HTTPRequest, call: PlannedCall) async throws -> HTTPResponse {
    #expect(call.service == "cloudflare")
    let url = String(request.url.dropFirst("https://cf.test".count))
    let parts = url.split(separator: "?", maxSplits: 1).map(String.init)
    seen.withLock {
      $0.append(Seen(operation: call.operation, method: request.method, path: parts[0], authorization: request.headers["Authorization"]))
    }
    if let o = override.withLock({ $0 }), let r = o(request, call) { return r }
    beforeSend.withLock { $0 }?(call, core)
    var headers: [String: String] = [:]
    for h in request.headers where headers[h.name.lowercased()] == nil { headers[h.name.lowercased()] = h.value }
    let r = await core.respond(
      SandboxRequest(
        method: request.method, path: parts[0], rawQuery: parts.count > 1 ? parts[1] : nil,
        headers: headers, body: request.body ?? []))
    return HTTPResponse(status: r.status, headers: HTTPHeaders(r.headers.map { HTTPHeader($0.0, $0.1) }), body: r.body)
  }

  var operations: [String] { seen.withLock { $0.map(\.operation) } }
  func reset() { seen.withLock { $0 = [] } }

  /// Reads or changes the emulated Cloudflare directly (what a person does in the dashboard).
  func world<T>(_ body: (inout CloudflareState) -> T) -> T { core.world.withLock { body(&$0.cloudflare) } }
  func zoneId(_ name: String) -> String { Seeder.zoneId(name) }
  func rules(_ zone: String, _ phase: String = "http_request_cache_settings") -> [JSON] {
    world { $0.rulesets[zoneId(zone)]?[phase]?["rules"]?.array ?? [] }
  }
}

/// The driver over the fake with an engine-like loop (observe → diff → apply every action,
/// keeping the latest observed state and the recorded external ids as the engine does).
final class Rig: Sendable {
  let fake: FakeCloudflare
  let driver: CloudflareDriver
  let index: DesiredIndex
  let loop: DriverLoop<CloudflareDriver>
  let logs = Mutex<[String]>([])

  static let token = "sandbox-cloudflare-token"

  init(
    resources: [Resource] = Example.resources, files: RepositoryFiles = Example.files(), fake: FakeCloudflare? = nil,
    token: String = Rig.token, accountId: String? = nil
  ) {
    index = DesiredIndex(resources, files: files)
    self.fake = fake ?? FakeCloudflare()
    driver = CloudflareDriver(
      config: CloudflareDriverConfig(
        endpoint: FakeCloudflare.base, token: .literal("integrations.cloudflare.token", token),
        accountId: accountId))
    loop = DriverLoop(driver)
  }

  /// The same fake and recorded ids, another revision of the repository.
  func with(_ resources: [Resource], files: RepositoryFiles = Example.files()) -> Rig {
    let r = Rig(resources: resources, files: files, fake: fake)
    r.loop.externals.withLock { $0 = loop.externals.withLock { $0 } }
    return r
  }

  var pricing: Pricing { Pricing(index) }

  var context: DriverContext {
    let fake = self.fake
    return DriverContext(
      desired: index, pricing: pricing, cache: MemoryCache(), client: { _ in fake },
      now: { Date(timeIntervalSince1970: 1_780_000_000) }, log: { [self] m in self.logs.withLock { $0.append(m) } })
  }

  /// The targets: every desired CDNZone, plus `gone` (names recorded but no longer desired).
  func targets(gone: [String] = []) -> [ObserveTarget] {
    let ext = loop.externals.withLock { $0 }
    var t = index.all(.cdnZone).map { r in
      ObserveTarget(id: ResourceID(r), desired: driver.desired(r, in: index), external: ext[ResourceID(r)] ?? [:])
    }
    t += gone.map { n in ObserveTarget(id: ResourceID(.cdnZone, n), desired: nil, external: ext[ResourceID(.cdnZone, n)] ?? [:]) }
    return t
  }

  /// Observes; an id already recorded wins over one the observation reports.
  func observe(_ targets: [ObserveTarget]) async throws -> [ResourceID: JSONValue] {
    try await loop.observe(targets, context: context, keepRecorded: true)
  }

  func diff(_ targets: [ObserveTarget], _ states: [ResourceID: JSONValue]) -> [Action] { loop.diff(targets, states, pricing: pricing) }

  /// Applies in the engine's order (forward actions, then deletes).
  func apply(_ actions: [Action], _ states: [ResourceID: JSONValue]) async throws -> [ResourceID: JSONValue] {
    try await loop.apply(actions, states, context: context)
  }

  /// Observe, diff, apply; returns the actions.
  @discardableResult
  func converge(gone: [String] = []) async throws -> [Action] {
    try await loop.converge(targets(gone: gone), context: context, keepRecorded: true)
  }

  func external(_ name: String) -> [String: String] { loop.externals.withLock { $0[ResourceID(.cdnZone, name)] ?? [:] } }
}

extension Array where Element == Action {
  var keys: [String] { map { "\($0.resource.name):\($0.operation.rawValue):\($0.key)" } }
}

func cloudflareError(_ status: Int, _ code: Int, _ message: String) -> HTTPResponse {
  let body: JSONValue = [
    "success": false, "errors": [["code": .int(Int64(code)), "message": .string(message)]], "messages": [], "result": .null,
  ]
  return HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: body.canonicalBytes)
}

/// The sandbox's JSON as the driver's.
func jv(_ j: JSON) -> JSONValue { try! JSONValue.parse(j.bytes) }
