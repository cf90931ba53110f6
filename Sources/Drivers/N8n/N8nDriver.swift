// The n8n driver (DESIGN A4): one workflow per Schedule, named `ytempire/<schedule>` and tagged
// `ytempire`. docs/drivers/n8n.md describes the templates, canonical forms, ownership and calls.
import Basics
import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import Synchronization

public struct N8nDriverConfig: Sendable {
  /// n8n's base URL (`integrations.n8n.endpoint`); the driver appends `/api/v1`.
  public var endpoint: String
  /// `integrations.n8n.apiKey`, sent as `X-N8N-API-KEY`.
  public var apiKey: LazySecret
  /// The n8n credential the generated Postgres nodes use (`integrations.n8n.credential`).
  public var credential: String?
  /// True when `integrations.configStore.url` is `postgres://…`: the analytics workflow then
  /// reads the `channels` table itself (with `credential`); otherwise the channels are rendered.
  public var configStoreIsPostgres: Bool
  /// Workflows per page when listing (n8n allows 1–250).
  public var pageSize: Int

  public init(endpoint: String, apiKey: LazySecret, credential: String? = nil, configStoreIsPostgres: Bool = false, pageSize: Int = 250) {
    self.endpoint = endpoint
    self.apiKey = apiKey
    self.credential = credential
    self.configStoreIsPostgres = configStoreIsPostgres
    self.pageSize = min(250, max(1, pageSize))
  }
}

/// Converges Schedules with n8n workflows through the public REST API v1.
public struct N8nDriver: Driver {
  public let name = "n8n"
  public let kinds: Set<Kind> = [.schedule]
  public let displayName = "n8n"
  public let config: N8nDriverConfig
  /// The `ytempire` tag's id once an apply created or found it (the observation's may be older).
  let tagMemo = TagMemo()

  public init(config: N8nDriverConfig) { self.config = config }

  public enum ExternalKey {
    /// The workflow's id in n8n.
    public static let workflowId = "n8nWorkflowId"
  }

  /// Operation names, as the governing RateLimit's `costs` would price them.
  public enum Operation {
    public static let list = "workflows.list"
    public static let get = "workflows.get"
    public static let create = "workflows.create"
    public static let update = "workflows.update"
    public static let delete = "workflows.delete"
    public static let activate = "workflows.activate"
    public static let deactivate = "workflows.deactivate"
    public static let setTags = "workflows.tags"
    public static let listTags = "tags.list"
    public static let createTag = "tags.create"
    public static let all = [list, get, create, update, delete, activate, deactivate, setTags, listTags, createTag]
  }

  // MARK: desired

  public func desired(_ resource: Resource, in index: DesiredIndex) -> JSONValue {
    guard let s = resource.schedule else { return .null }
    let name = Canonical.workflowName(resource.name)
    var o: [String: JSONValue] = ["name": .string(name), "active": .bool(s.active)]
    let rendered: Templates.Rendered
    var settings = Templates.settings(s)
    switch s.workflow {
    case .template(let t):
      o["source"] = .string("template/" + t.rawValue)
      switch t {
      case .contentGeneration:
        rendered = Templates.contentGeneration(s, channels: Self.selected(s, in: index))
      case .analyticsCollection:
        if config.configStoreIsPostgres, let credential = config.credential, !credential.isEmpty {
          rendered = Templates.analyticsCollection(s, source: .postgres(credential: credential, sql: Templates.channelsSQL(s.targets)))
        } else {
          rendered = Templates.analyticsCollection(s, source: .rendered(Self.selected(s, in: index)))
        }
      }
    case .file(let path):
      o["source"] = .string("file/" + path)
      switch WorkflowFile.load(path, index.files) {
      case .failure(let e):
        o["error"] = .string(e.description)
        return .object(o)
      case .success(let f):
        rendered = f.rendered
        var merged = f.settings
        for (k, v) in settings.object ?? [:] where k != "executionOrder" || merged[k] == nil { merged[k] = v }
        settings = .object(merged)
      }
    }
    o["definition"] = [
      "nodes": .object(rendered.nodes), "connections": Canonical.numbers(.object(rendered.connections)),
      "settings": Canonical.numbers(settings),
    ]
    o["layout"] = .object(rendered.layout)
    if !rendered.webhookIds.isEmpty { o["webhookIds"] = .object(rendered.webhookIds) }
    return .object(o)
  }

  /// The active channels a Schedule selects (by name, or by labels), sorted by name.
  static func selected(_ s: ScheduleSpec, in index: DesiredIndex) -> [Templates.SelectedChannel] {
    let channels: [Resource]
    switch s.targets {
    case .channels(let refs):
      channels = refs.compactMap { index.resource(.channel, $0.name) }
    case .selector(let labels, _):
      channels = index.all(.channel).filter { r in labels.allSatisfy { r.metadata.labels[$0.key] == $0.value } }
    }
    return channels.filter { $0.channel?.active == true }.sorted { $0.name < $1.name }.compactMap { r in
      guard let c = r.channel else { return nil }
      return Templates.SelectedChannel(name: r.name, youtubeChannelId: c.youtube.channelId, niche: r.metadata.labels["niche"])
    }
  }

  // MARK: observation plan

  enum Step {
    case unusable(String)
    case nothing
    case get(String)
    case byName(String)
  }

  static func step(_ t: ObserveTarget) -> Step {
    let d = (t.desired?.isNull ?? true) ? nil : t.desired
    if let e = d?["error"]?.string { return .unusable(e) }
    if let id = t.external[ExternalKey.workflowId] { return .get(id) }
    if let d, let name = d["name"]?.string { return .byName(name) }
    return .nothing
  }

  /// One `tags.list` when any desired target is observed (the tag id a create or re-tag needs);
  /// per target one `workflows.get` by its recorded id, or one `workflows.list?name=` page to
  /// adopt by name (a desired target with no id recorded).
  public func observationCalls(_ targets: [ObserveTarget], pricing: Pricing) -> [PlannedCall] {
    var calls: [PlannedCall] = Self.needsTag(targets) ? [pricing.call("n8n", Operation.listTags)] : []
    for t in targets.sorted(by: { $0.id < $1.id }) {
      switch Self.step(t) {
      case .unusable, .nothing: continue
      case .get: calls.append(pricing.call("n8n", Operation.get))
      case .byName: calls.append(pricing.call("n8n", Operation.list))
      }
    }
    return calls
  }

  /// True when a desired target will be looked at (its create or re-tag needs the tag's id).
  static func needsTag(_ targets: [ObserveTarget]) -> Bool {
    targets.contains { t in
      guard let d = t.desired, !d.isNull else { return false }
      switch step(t) {
      case .get, .byName: return true
      case .unusable, .nothing: return false
      }
    }
  }

  // MARK: observe

  public func observe(_ targets: [ObserveTarget], context: DriverContext) async throws -> [ResourceID: ObservationOutcome] {
    var out: [ResourceID: ObservationOutcome] = [:]
    let sorted = targets.sorted(by: { $0.id < $1.id })
    var tagId: JSONValue = .null
    if Self.needsTag(sorted) {
      do {
        tagId = JSONValue(try await findTag(schedule: nil, call: context.pricing.call("n8n", Operation.listTags), context: context))
      } catch is CancellationError {
        throw CancellationError()
      } catch {
        for t in sorted { out[t.id] = .failed("\(error)") }
        return out
      }
    }
    for t in sorted {
      do {
        out[t.id] = try await observeOne(t, tagId: tagId, context: context)
      } catch is CancellationError {
        throw CancellationError()
      } catch {
        out[t.id] = .failed("\(error)")
      }
    }
    return out
  }

  private func observeOne(_ t: ObserveTarget, tagId: JSONValue, context: DriverContext) async throws -> ObservationOutcome {
    let schedule = t.id.name
    switch Self.step(t) {
    case .unusable(let e):
      return .failed(e)
    case .nothing:
      return .observed(state: ["workflow": .null, "tagId": tagId], external: [:])
    case .get(let id):
      let wf = try await send(
        Operation.get, "GET", "/workflows/" + PercentEncoding.encode(id), body: nil,
        call: context.pricing.call("n8n", Operation.get), schedule: schedule, context: context, goneIsNil: true)
      guard let wf, wf["id"]?.string != nil else { return .observed(state: ["workflow": .null, "tagId": tagId], external: [:]) }
      return .observed(state: ["workflow": Canonical.workflow(wf), "tagId": tagId], external: [:])
    case .byName(let name):
      let found = try await listByName(name, schedule: schedule, context: context)
      // Ours: tagged ytempire, or untagged with the node ids ytempire derives (a crash
      // between the create and the tagging). Anything else with our name is someone else's.
      if let mine = found.first(where: { Canonical.workflow($0)["tagged"]?.bool == true })
        ?? found.first(where: { Canonical.hasDerivedIds($0, name: name) }), let id = mine["id"]?.string
      {
        return .observed(state: ["workflow": Canonical.workflow(mine), "tagId": tagId], external: [ExternalKey.workflowId: id])
      }
      if let foreign = found.first {
        let e = N8nError(
          operation: Operation.list, schedule: schedule, status: nil, reason: "notOwned",
          message: "n8n already has a workflow named \"\(name)\" (id \(foreign["id"]?.string ?? "?")) that is not tagged \(Canonical.tag): "
            + "ytempire does not take over workflows it does not own; rename or delete it, or tag it \(Canonical.tag) to hand it over")
        return .failed(e.description)
      }
      return .observed(state: ["workflow": .null, "tagId": tagId], external: [:])
    }
  }

  /// Every workflow with exactly this name (`GET /workflows?name=`, following `nextCursor`).
  func listByName(_ name: String, schedule: String, context: DriverContext) async throws -> [JSONValue] {
    try await listWorkflows(query: "name=" + PercentEncoding.encode(name), schedule: schedule, context: context).filter {
      $0["name"]?.string == name
    }
  }

  /// Every workflow `GET /workflows?<query>` lists, following `nextCursor` (at most `maxPages`
  /// pages). Each item is checked to be a workflow object with a string name and id: an item of
  /// another shape is a malformed answer, not "no such workflow" (a plan would then create a duplicate).
  func listWorkflows(query: String, schedule: String?, context: DriverContext) async throws -> [JSONValue] {
    var out: [JSONValue] = []
    var cursor: String?
    var seen = Set<String>()
    var pages = 0
    repeat {
      var path = "/workflows?" + (query.isEmpty ? "" : query + "&") + "limit=\(config.pageSize)"
      if let cursor { path += "&cursor=" + PercentEncoding.encode(cursor) }
      let page = try await send(
        Operation.list, "GET", path, body: nil, call: context.pricing.call("n8n", Operation.list),
        schedule: schedule, context: context)
      guard let data = page?["data"]?.array, data.count <= 250 else {
        throw N8nError(
          operation: Operation.list, schedule: schedule, status: nil, reason: "malformedResponse",
          message: "the workflow list has no data array of at most 250 entries")
      }
      for (i, item) in data.enumerated() {
        guard item.object != nil, item["name"]?.string != nil, item["id"]?.string != nil else {
          throw Self.malformedItem(Operation.list, schedule: schedule, list: "workflow", index: i, item)
        }
        out.append(item)
      }
      cursor = try Self.nextCursor(page, Operation.list, schedule: schedule)
      if let c = cursor, c.isEmpty || !seen.insert(c).inserted { cursor = nil }
      pages += 1
    } while cursor != nil && pages < Self.maxPages
    return out
  }

  /// Pages followed at most in one listing (250 workflows each).
  static let maxPages = 400

  static func malformedItem(_ operation: String, schedule: String?, list: String, index: Int, _ item: JSONValue) -> N8nError {
    let what =
      item.object == nil
      ? "is \(item.typeDescription), not a \(list) object"
      : "has no string \(item["name"]?.string == nil ? "name" : "id")"
    return N8nError(
      operation: operation, schedule: schedule, status: nil, reason: "malformedResponse",
      message: "item \(index) of the \(list) list \(what); n8n's answer is malformed, nothing is planned from it")
  }

  /// `nextCursor`: a string, or null/absent at the last page; anything else is malformed.
  static func nextCursor(_ page: JSONValue?, _ operation: String, schedule: String?) throws -> String? {
    guard let c = page?["nextCursor"], !c.isNull else { return nil }
    guard let s = c.string else {
      throw N8nError(
        operation: operation, schedule: schedule, status: nil, reason: "malformedResponse",
        message: "nextCursor is \(c.typeDescription), not a string; n8n's answer is malformed")
    }
    return s
  }

  /// The id of the `ytempire` tag (`GET /tags`, paged), nil when n8n has none.
  func findTag(schedule: String?, call: PlannedCall, context: DriverContext) async throws -> String? {
    var cursor: String?
    var seen = Set<String>()
    var pages = 0
    repeat {
      var path = "/tags?limit=250"
      if let cursor { path += "&cursor=" + PercentEncoding.encode(cursor) }
      let page = try await send(Operation.listTags, "GET", path, body: nil, call: call, schedule: schedule, context: context)
      guard let data = page?["data"]?.array else {
        throw N8nError(
          operation: Operation.listTags, schedule: schedule, status: nil, reason: "malformedResponse",
          message: "the tag list has no data array")
      }
      for (i, item) in data.enumerated() {
        guard item.object != nil, let n = item["name"]?.string, let id = item["id"]?.string else {
          throw Self.malformedItem(Operation.listTags, schedule: schedule, list: "tag", index: i, item)
        }
        if n == Canonical.tag { return id }
      }
      cursor = try Self.nextCursor(page, Operation.listTags, schedule: schedule)
      if let c = cursor, c.isEmpty || !seen.insert(c).inserted { cursor = nil }
      pages += 1
    } while cursor != nil && pages < Self.maxPages
    return nil
  }

  // MARK: diff

  public func diff(_ input: DiffInput) -> [Action] { N8nDiff.actions(input, driver: name) }

  // MARK: apply

  public func apply(_ action: Action, observed: JSONValue, external: [String: String], context: DriverContext) async throws -> ApplyOutcome
  {
    let p = action.payload
    let schedule = action.resource.name
    var calls = action.calls
    func next(_ operation: String) -> PlannedCall {
      if let i = calls.firstIndex(where: { $0.operation == operation }) { return calls.remove(at: i) }
      return context.pricing.call("n8n", operation)
    }
    var state = observed.object ?? ["workflow": .null, "tagId": .null]
    switch (action.operation, action.key) {
    case (.create, N8nDiff.workflowKey):
      guard let body = p["body"] else { throw malformed(action) }
      guard
        let created = try await send(
          Operation.create, "POST", "/workflows", body: body, call: next(Operation.create),
          schedule: schedule, context: context),
        let id = created["id"]?.string
      else {
        throw N8nError(
          operation: Operation.create, schedule: schedule, status: nil, reason: "malformedResponse",
          message: "the created workflow came back without an id")
      }
      var wf = created
      let tag = try await tagId(p["tagId"]?.string, schedule: schedule, call: next(Operation.createTag), context: context)
      state["tagId"] = .string(tag)
      let tags = try await setTags(id, [tag], schedule: schedule, call: next(Operation.setTags), context: context)
      wf = Self.with(wf, tags: tags)
      if p["active"]?.bool == true {
        if let a = try await send(
          Operation.activate, "POST", "/workflows/\(PercentEncoding.encode(id))/activate", body: nil,
          call: next(Operation.activate), schedule: schedule, context: context)
        {
          wf = Self.with(a, tags: tags)
        }
      }
      state["workflow"] = Canonical.workflow(wf)
      return ApplyOutcome(external: [ExternalKey.workflowId: id], observed: .object(state))

    case (.update, N8nDiff.workflowKey):
      guard let id = p["id"]?.string, let body = p["body"] else { throw malformed(action) }
      let wf = try await send(
        Operation.update, "PUT", "/workflows/" + PercentEncoding.encode(id), body: body, call: next(Operation.update),
        schedule: schedule, context: context)
      let tags = observed["workflow"]?["tags"]?.array ?? []
      state["workflow"] = wf.map { Canonical.workflow(Self.with($0, tags: tags)) } ?? .null
      return ApplyOutcome(external: [ExternalKey.workflowId: id], observed: wf == nil ? nil : .object(state))

    case (.update, N8nDiff.tagsKey):
      guard let id = p["id"]?.string else { throw malformed(action) }
      let tag = try await tagId(p["tagId"]?.string, schedule: schedule, call: next(Operation.createTag), context: context)
      state["tagId"] = .string(tag)
      let keep = (p["keep"]?.array ?? []).compactMap(\.string)
      let tags = try await setTags(id, keep + [tag], schedule: schedule, call: next(Operation.setTags), context: context)
      if var wf = state["workflow"]?.object {
        wf["tags"] = Canonical.workflow(["tags": .array(tags)])["tags"]
        wf["tagged"] = .bool(tags.contains { $0["name"]?.string == Canonical.tag })
        state["workflow"] = .object(wf)
      }
      return ApplyOutcome(external: [ExternalKey.workflowId: id], observed: .object(state))

    case (.update, N8nDiff.activationKey):
      guard let id = p["id"]?.string, let active = p["active"]?.bool else { throw malformed(action) }
      let op = active ? Operation.activate : Operation.deactivate
      let wf = try await send(
        op, "POST", "/workflows/\(PercentEncoding.encode(id))/\(active ? "activate" : "deactivate")", body: nil,
        call: next(op), schedule: schedule, context: context)
      if var w = state["workflow"]?.object {
        w["active"] = .bool(wf?["active"]?.bool ?? active)
        state["workflow"] = .object(w)
      }
      return ApplyOutcome(external: [ExternalKey.workflowId: id], observed: .object(state))

    case (.delete, N8nDiff.workflowKey):
      guard let id = p["id"]?.string else { throw malformed(action) }
      _ = try await send(
        Operation.delete, "DELETE", "/workflows/" + PercentEncoding.encode(id), body: nil, call: next(Operation.delete),
        schedule: schedule, context: context, goneIsNil: true)
      state["workflow"] = .null
      let forget: [String: String?] = [ExternalKey.workflowId: nil]
      return ApplyOutcome(external: forget, observed: .object(state))

    default:
      throw malformed(action)
    }
  }

  static func with(_ wf: JSONValue, tags: [JSONValue]) -> JSONValue {
    var o = wf.object ?? [:]
    o["tags"] = .array(tags)
    return .object(o)
  }

  /// The tag's id: the one the plan saw, one an earlier action found, or a new tag
  /// (`POST /tags`; a 409 means another writer made it: it is looked up).
  func tagId(_ planned: String?, schedule: String, call: PlannedCall, context: DriverContext) async throws -> String {
    if let planned { return planned }
    return try await tagMemo.resolve { try await self.createTag(schedule: schedule, call: call, context: context) }
  }

  private func createTag(schedule: String, call: PlannedCall, context: DriverContext) async throws -> String {
    do {
      let t = try await send(
        Operation.createTag, "POST", "/tags", body: ["name": .string(Canonical.tag)], call: call,
        schedule: schedule, context: context)
      guard let id = t?["id"]?.string else {
        throw N8nError(
          operation: Operation.createTag, schedule: schedule, status: nil, reason: "malformedResponse", message: "the created tag has no id"
        )
      }
      return id
    } catch let e as N8nError where e.status == 409 {
      guard let id = try await findTag(schedule: schedule, call: context.pricing.call("n8n", Operation.listTags), context: context) else {
        throw e
      }
      return id
    }
  }

  /// `PUT /workflows/{id}/tags` (replaces the workflow's tags); returns the tags n8n answers.
  /// A tag id that no longer exists (404 `Some tags not found`) is looked up again once.
  func setTags(_ id: String, _ tagIds: [String], schedule: String, call: PlannedCall, context: DriverContext) async throws -> [JSONValue] {
    var seen = Set<String>()
    let unique = tagIds.filter { seen.insert($0).inserted }
    let body = JSONValue.array(unique.map { ["id": .string($0)] })
    do {
      let r = try await send(
        Operation.setTags, "PUT", "/workflows/\(PercentEncoding.encode(id))/tags", body: body, call: call,
        schedule: schedule, context: context)
      return r?.array ?? []
    } catch let e as N8nError where e.status == 404 && (e.message.lowercased().contains("tag")) {
      tagMemo.set(nil)
      let fresh = try await tagId(nil, schedule: schedule, call: context.pricing.call("n8n", Operation.createTag), context: context)
      let retry = JSONValue.array((unique.dropLast() + [fresh]).map { ["id": .string($0)] })
      let r = try await send(
        Operation.setTags, "PUT", "/workflows/\(PercentEncoding.encode(id))/tags", body: retry, call: call,
        schedule: schedule, context: context)
      return r?.array ?? []
    }
  }

  private func malformed(_ a: Action) -> N8nError {
    N8nError(
      operation: a.calls.first?.operation ?? a.key, schedule: a.resource.name, status: nil, reason: "malformedAction",
      message: "action \(a.id) lacks what apply needs in its payload")
  }

  // MARK: calls

  /// One n8n call: JSON in, JSON out. Errors become `N8nError` (whether the client answered
  /// the error as a response or the resilience layer threw it). `goneIsNil`: a 404 is nil.
  func send(
    _ operation: String, _ method: String, _ path: String, body: JSONValue?, call: PlannedCall,
    schedule: String?, context: DriverContext, goneIsNil: Bool = false
  ) async throws -> JSONValue? {
    let key: String
    do { key = try config.apiKey.resolve() } catch {
      throw N8nError(
        operation: operation, schedule: schedule, status: nil, reason: "secretUnavailable",
        message: "\(config.apiKey.name) cannot be resolved: \(error)")
    }
    var base = config.endpoint
    while base.hasSuffix("/") { base.removeLast() }
    var headers: HTTPHeaders = ["X-N8N-API-KEY": key, "Accept": "application/json"]
    var bytes: [UInt8]?
    if let body {
      headers.add("Content-Type", "application/json")
      bytes = body.canonicalBytes
    }
    let request = HTTPRequest(method: method, url: base + "/api/v1" + path, headers: headers, body: bytes)
    var failure: (status: Int?, message: String)
    do {
      let r = try await context.client("n8n").send(request, call: call)
      if (200..<300).contains(r.status) {
        if r.body.isEmpty { return nil }
        do { return try JSONValue.parse(r.body, maxDepth: 64) } catch {
          throw N8nError(
            operation: operation, schedule: schedule, status: r.status, reason: "malformedResponse",
            message: "the answer is not JSON (or is nested deeper than 64 levels)")
        }
      }
      failure = (r.status, N8nError.message(r.body))
    } catch let e where CallFailure(e) != nil {
      let f = CallFailure(e)!
      failure = (f.status, f.message)
    }
    if failure.status == 404 && goneIsNil { return nil }
    var message = N8nError.scrub(failure.message, key)
    if let hint = N8nError.hint(status: failure.status) { message += message.isEmpty ? hint : " (\(hint))" }
    throw N8nError(
      operation: operation, schedule: schedule, status: failure.status,
      reason: N8nError.reason(status: failure.status), message: message)
  }
}

/// Remembers the `ytempire` tag's id between the actions of a run, and makes actions applied
/// in parallel share one lookup or creation of it (rather than racing to `POST /tags`).
final class TagMemo: Sendable {
  private struct State {
    var id: String?
    var pending: Task<String, any Error>?
  }
  private let state = Mutex(State())
  var value: String? { state.withLock { $0.id } }
  func set(_ v: String?) { state.withLock { $0.id = v } }

  func resolve(_ make: @escaping @Sendable () async throws -> String) async throws -> String {
    let task: Task<String, any Error> = state.withLock { s in
      if let id = s.id { return Task { id } }
      if let p = s.pending { return p }
      let t = Task { try await make() }
      s.pending = t
      return t
    }
    do {
      let id = try await task.valueCancelledWithWaiter
      state.withLock {
        $0.id = id
        $0.pending = nil
      }
      return id
    } catch {
      state.withLock { $0.pending = nil }
      throw error
    }
  }
}

/// A `workflowFile`: the repository's raw n8n workflow JSON.
struct WorkflowFile {
  var rendered: Templates.Rendered
  var settings: [String: JSONValue]

  struct Problem: Error, CustomStringConvertible { var description: String }

  static let maxBytes = 4 << 20

  static func load(_ path: String, _ files: RepositoryFiles) -> Result<WorkflowFile, Problem> {
    guard let bytes = files.read(path) else {
      return .failure(
        Problem(
          description:
            "\(N8nError(operation: "workflowFile", schedule: nil, status: nil, reason: "workflowFileMissing", message: "\(path) is not a file of this revision"))"
        ))
    }
    func bad(_ m: String) -> Result<WorkflowFile, Problem> {
      .failure(
        Problem(
          description:
            "\(N8nError(operation: "workflowFile", schedule: nil, status: nil, reason: "workflowFileInvalid", message: "\(path): \(m)"))"))
    }
    guard bytes.count <= maxBytes else { return bad("larger than \(maxBytes) bytes") }
    guard let v = try? JSONValue.parse(bytes, maxDepth: 64) else { return bad("not JSON (or nested deeper than 64 levels)") }
    guard v.object != nil else { return bad("not a JSON object") }
    guard let list = v["nodes"]?.array, !list.isEmpty else { return bad("has no nodes") }
    guard let nodes = Canonical.nodes(list) else { return bad("a node has no name, or two nodes share one") }
    for (name, n) in nodes where n["type"]?.string == nil || n["typeVersion"]?.double == nil {
      return bad("node \"\(name)\" needs a type and a typeVersion")
    }
    var r = Templates.Rendered()
    r.nodes = nodes
    for n in list {
      guard let name = n["name"]?.string, let pos = n["position"]?.array, pos.count == 2,
        let x = pos[0].double, let y = pos[1].double, abs(x) <= 1e7, abs(y) <= 1e7
      else { continue }
      r.layout[name] = [.int(Int64(x.rounded())), .int(Int64(y.rounded()))]
    }
    for n in list {
      if let name = n["name"]?.string, let w = n["webhookId"]?.string, !w.isEmpty { r.webhookIds[name] = .string(w) }
    }
    guard let connections = (v["connections"] ?? .object([:])).object else { return bad("connections is not an object") }
    for (from, c) in connections {
      guard nodes[from] != nil else { return bad("connections name a node \"\(from)\" that does not exist") }
      for out in c["main"]?.array ?? [] {
        for link in out.array ?? [] where nodes[link["node"]?.string ?? ""] == nil {
          return bad("connections from \"\(from)\" lead to a node \"\(link["node"]?.string ?? "?")\" that does not exist")
        }
      }
    }
    r.connections = connections
    guard let settings = (v["settings"] ?? .object([:])).object else { return bad("settings is not an object") }
    return .success(WorkflowFile(rendered: r, settings: settings))
  }
}
