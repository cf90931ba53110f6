import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import N8nDriver

/// The example repository, loaded as `ytempire validate` does.
enum Example {
  static var resources: [Resource] { ExampleEmpire.resources }
  static var index: DesiredIndex { DesiredIndex(resources) }
}

struct Seen: Sendable {
  var method: String
  var path: String
  var query: [String: String]
  var body: JSONValue?
  var apiKey: String?
  var call: PlannedCall
}

/// A fake n8n behind `ServiceClient`: stateful, recording, answering errors as responses (as a
/// plain client would; the thrown path is the sandbox tests'). Bodies are checked as n8n's
/// closed schema does.
final class FakeN8n: ServiceClient {
  struct State {
    var workflows: [String: JSONValue] = [:]
    var order: [String] = []
    var tags: [String: String] = [:]  // id → name
    var serial = 0
    var seen: [Seen] = []
    /// One-shot answers: "METHOD /path" (path without /api/v1 and query) → response.
    var scripted: [String: HTTPResponse] = [:]
    var pageSize = 250
    /// Match `name=` as a substring (a looser server filter).
    var nameContains = false
  }
  let state = Mutex(State())
  static let key = "fake-n8n-key-123456"

  var seen: [Seen] { state.withLock { $0.seen } }
  func clearSeen() { state.withLock { $0.seen = [] } }
  func calls() -> [String] { seen.map(\.call.operation) }
  func requests() -> [String] { seen.map { "\($0.method) \($0.path)" } }
  func script(_ key: String, _ r: HTTPResponse) { state.withLock { $0.scripted[key] = r } }
  func workflow(_ id: String) -> JSONValue? { state.withLock { $0.workflows[id] } }
  func workflows(named name: String) -> [JSONValue] {
    state.withLock { s in s.order.compactMap { s.workflows[$0] }.filter { $0["name"]?.string == name } }
  }
  var all: [JSONValue] { state.withLock { s in s.order.compactMap { s.workflows[$0] } } }

  @discardableResult
  func addWorkflow(_ name: String, tags: [String] = [], nodes: [JSONValue]? = nil, active: Bool = false) -> String {
    state.withLock { s in
      s.serial += 1
      let id = "wf\(s.serial)"
      var tagObjs: [JSONValue] = []
      for t in tags {
        let tid =
          s.tags.first { $0.value == t }?.key
          ?? {
            s.serial += 1
            let i = "tag\(s.serial)"
            s.tags[i] = t
            return i
          }()
        tagObjs.append(["id": .string(tid), "name": .string(t)])
      }
      let n =
        nodes ?? [
          ["id": "m1", "name": "Manual", "type": "n8n-nodes-base.manualTrigger", "typeVersion": 1, "position": [0, 0], "parameters": [:]]
        ]
      s.workflows[id] = [
        "id": .string(id), "name": .string(name), "active": .bool(active), "nodes": .array(n), "connections": [:],
        "settings": ["executionOrder": "v1"], "staticData": .null, "tags": .array(tagObjs),
        "createdAt": "2024-01-01T00:00:00.000Z", "updatedAt": "2024-01-01T00:00:00.000Z", "versionId": "v0",
      ]
      s.order.append(id)
      return id
    }
  }

  func mutate(_ id: String, _ f: (inout [String: JSONValue]) -> Void) {
    state.withLock { s in
      guard var o = s.workflows[id]?.object else { return }
      f(&o)
      s.workflows[id] = .object(o)
    }
  }

  static func json(_ status: Int, _ v: JSONValue) -> HTTPResponse {
    HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: v.canonicalBytes)
  }
  static func message(_ status: Int, _ m: String) -> HTTPResponse { json(status, ["message": .string(m)]) }

  func send(_ request: HTTPRequest, call: PlannedCall) async throws -> HTTPResponse {
    let comps = URLComponents(string: request.url)!
    var query: [String: String] = [:]
    for item in comps.queryItems ?? [] { query[item.name] = item.value ?? "" }
    let path = comps.path.hasPrefix("/api/v1") ? String(comps.path.dropFirst(7)) : comps.path
    let body = request.body.flatMap { try? JSONValue.parse($0) }
    let seen = Seen(method: request.method, path: path, query: query, body: body, apiKey: request.headers["X-N8N-API-KEY"], call: call)
    return state.withLock { s in
      s.seen.append(seen)
      if let r = s.scripted.removeValue(forKey: "\(request.method) \(path)") { return r }
      guard seen.apiKey != nil else { return Self.message(401, "'X-N8N-API-KEY' header required") }
      guard seen.apiKey == Self.key else { return Self.message(401, "unauthorized") }
      return Self.answer(seen, &s)
    }
  }

  static let writable: Set<String> = ["name", "nodes", "connections", "settings", "staticData", "pinData"]

  static func validate(_ body: JSONValue?) -> HTTPResponse? {
    guard let o = body?.object else { return message(400, "request/body must be object") }
    for k in o.keys.sorted() where ["id", "active", "tags", "createdAt", "updatedAt", "versionId"].contains(k) {
      return message(400, "request/body/\(k) is read-only")
    }
    if o.keys.contains(where: { !writable.contains($0) }) { return message(400, "request/body must NOT have additional properties") }
    for req in ["name", "nodes", "connections", "settings"] where o[req] == nil {
      return message(400, "request/body must have required property '\(req)'")
    }
    return nil
  }

  static func answer(_ r: Seen, _ s: inout State) -> HTTPResponse {
    let seg = r.path.split(separator: "/").map(String.init)
    switch (r.method, seg.count, seg.first) {
    case ("GET", 1, "workflows"):
      var all = s.order.compactMap { s.workflows[$0] }
      if let n = r.query["name"] {
        all = all.filter { s.nameContains ? ($0["name"]?.string ?? "").contains(n) : $0["name"]?.string == n }
      }
      let offset = Int(r.query["cursor"] ?? "0") ?? 0
      let end = min(all.count, offset + s.pageSize)
      let page = offset < all.count ? Array(all[offset..<end]) : []
      return json(200, ["data": .array(page), "nextCursor": end < all.count ? .string(String(end)) : .null])
    case ("POST", 1, "workflows"):
      if let bad = validate(r.body) { return bad }
      s.serial += 1
      let id = "wf\(s.serial)"
      var o = r.body!.object!
      o["id"] = .string(id)
      o["active"] = false
      o["tags"] = []
      o["versionId"] = .string("v\(s.serial)")
      o["createdAt"] = "2026-01-01T00:00:00.000Z"
      o["updatedAt"] = "2026-01-01T00:00:00.000Z"
      if o["staticData"] == nil { o["staticData"] = .null }
      s.workflows[id] = .object(o)
      s.order.append(id)
      return json(200, .object(o))
    case ("GET", 2, "workflows"):
      return s.workflows[seg[1]].map { json(200, $0) } ?? message(404, "Not Found")
    case ("PUT", 2, "workflows"):
      if let bad = validate(r.body) { return bad }
      guard var o = s.workflows[seg[1]]?.object else { return message(404, "Not Found") }
      for (k, v) in r.body!.object! { o[k] = v }
      s.serial += 1
      o["versionId"] = .string("v\(s.serial)")
      s.workflows[seg[1]] = .object(o)
      return json(200, .object(o))
    case ("DELETE", 2, "workflows"):
      guard let wf = s.workflows[seg[1]] else { return message(404, "Not Found") }
      s.workflows[seg[1]] = nil
      s.order.removeAll { $0 == seg[1] }
      return json(200, wf)
    case ("POST", 3, "workflows") where seg[2] == "activate" || seg[2] == "deactivate":
      guard var o = s.workflows[seg[1]]?.object else { return message(404, "Not Found") }
      o["active"] = .bool(seg[2] == "activate")
      s.workflows[seg[1]] = .object(o)
      return json(200, .object(o))
    case ("PUT", 3, "workflows") where seg[2] == "tags":
      guard var o = s.workflows[seg[1]]?.object else { return message(404, "Not Found") }
      var tags: [JSONValue] = []
      for t in r.body?.array ?? [] {
        guard let id = t["id"]?.string, let name = s.tags[id] else { return message(404, "Some tags not found") }
        tags.append(["id": .string(id), "name": .string(name)])
      }
      o["tags"] = .array(tags)
      s.workflows[seg[1]] = .object(o)
      return json(200, .array(tags))
    case ("GET", 1, "tags"):
      return json(
        200, ["data": .array(s.tags.keys.sorted().map { ["id": .string($0), "name": .string(s.tags[$0]!)] }), "nextCursor": .null])
    case ("POST", 1, "tags"):
      guard let name = r.body?["name"]?.string else { return message(400, "request/body must have required property 'name'") }
      if s.tags.values.contains(name) { return message(409, "Tag already exists") }
      s.serial += 1
      let id = "tag\(s.serial)"
      s.tags[id] = name
      return json(201, ["id": .string(id), "name": .string(name)])
    default:
      return message(404, "not found")
    }
  }
}

/// The driver over the fake, with an engine-like loop.
final class Rig: Sendable {
  let fake = FakeN8n()
  let driver: N8nDriver
  let index: DesiredIndex
  let pricing: Pricing
  let loop: DriverLoop<N8nDriver>

  init(
    resources: [Resource] = Example.resources, files: RepositoryFiles = .none, postgres: Bool = false,
    credential: String? = "ytempire-postgres",
    key: String = FakeN8n.key
  ) {
    index = DesiredIndex(resources, files: files)
    pricing = Pricing(index)
    driver = N8nDriver(
      config: N8nDriverConfig(
        endpoint: "https://n8n.test/", apiKey: .literal("integrations.n8n.apiKey", key),
        credential: credential, configStoreIsPostgres: postgres))
    loop = DriverLoop(driver)
  }

  var context: DriverContext {
    let fake = self.fake
    return DriverContext(desired: index, pricing: pricing, cache: MemoryCache(), client: { _ in fake })
  }

  func targets(_ names: [String]? = nil, desired: Bool = true) -> [ObserveTarget] {
    let ext = loop.externals.withLock { $0 }
    return index.all(.schedule).filter { names?.contains($0.name) ?? true }.map { r in
      ObserveTarget(id: ResourceID(r), desired: desired ? driver.desired(r, in: index) : nil, external: ext[ResourceID(r)] ?? [:])
    }
  }

  func desired(_ name: String) -> JSONValue { driver.desired(index.resource(.schedule, name)!, in: index) }

  /// Observes and records adopted ids; throws when a target failed.
  func observe(_ targets: [ObserveTarget]) async throws -> [ResourceID: JSONValue] { try await loop.observe(targets, context: context) }

  func diff(_ targets: [ObserveTarget], _ observed: [ResourceID: JSONValue]) -> [Action] { loop.diff(targets, observed, pricing: pricing) }

  func apply(_ actions: [Action], _ states: [ResourceID: JSONValue]) async throws -> [ResourceID: JSONValue] {
    try await loop.apply(actions, states, context: context)
  }

  /// Observe, diff and apply everything.
  @discardableResult
  func converge(_ names: [String]? = nil) async throws -> [Action] { try await loop.converge(targets(names), context: context) }

  func external(_ name: String) -> String? {
    loop.externals.withLock { $0[ResourceID(.schedule, name)]?[N8nDriver.ExternalKey.workflowId] }
  }
}

extension Array where Element == Action {
  func keys() -> [String] { map { "\($0.resource.name):\($0.operation.rawValue):\($0.key)" } }
}
