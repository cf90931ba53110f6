// The Cloudflare driver (DESIGN A4): a CDNZone's cache rules, Configuration Rules (polish), the
// webp zone setting, Workers scripts and their routes, and R2 buckets for push zones.
// docs/drivers/cloudflare.md describes what it observes, its canonical forms, ownership and errors.
import Basics
import CurlHTTP
import DriverKit
import EmpireModel
import Foundation

public struct CloudflareDriverConfig: Sendable {
  /// Base URL of the v4 API (`https://api.cloudflare.com/client/v4`, or the sandbox's).
  public var endpoint: String
  /// The API token (sent as `Authorization: Bearer …`).
  public var token: LazySecret
  /// The account that holds Workers scripts and R2 buckets; nil = each zone's own `account.id`.
  public var accountId: String?

  public init(endpoint: String, token: LazySecret, accountId: String? = nil) {
    self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
    self.token = token
    self.accountId = accountId
  }
}

/// Converges CDNZones with Cloudflare. Owns the rules whose ref starts with `ytempire-`, the
/// scripts, routes and buckets it created or adopted by name (recorded as external ids).
public struct CloudflareDriver: Driver {
  public let name = "cloudflare"
  public let kinds: Set<Kind> = [.cdnZone]
  public let displayName = "Cloudflare"
  public let config: CloudflareDriverConfig
  /// The RateLimit service name every call is priced and limited under.
  public static let service = "cloudflare"

  public init(config: CloudflareDriverConfig) { self.config = config }

  /// `external` keys (status files show them).
  public enum ExternalKey {
    public static let zoneId = "cloudflareZoneId"
    public static let accountId = "cloudflareAccountId"
    public static let scriptPrefix = "scripts/"
    public static let routePrefix = "routes/"
    public static let bucketPrefix = "buckets/"
    public static func script(_ n: String) -> String { scriptPrefix + n }
    public static func route(_ n: String) -> String { routePrefix + n }
    public static func bucket(_ n: String) -> String { bucketPrefix + n }
  }

  /// Operation names, as a RateLimit's `costs` would name them.
  enum Op {
    static let zonesList = "zones.list"
    static let rulesetsGet = "rulesets.get", rulesetsUpdate = "rulesets.update"
    static let settingsGet = "settings.get", settingsUpdate = "settings.update"
    static let routesList = "routes.list", routesCreate = "routes.create", routesUpdate = "routes.update", routesDelete = "routes.delete"
    static let scriptsContent = "scripts.content", scriptsUpload = "scripts.upload", scriptsDelete = "scripts.delete"
    static let bucketsGet = "buckets.get", bucketsCreate = "buckets.create", bucketsDelete = "buckets.delete"
  }

  /// The two rule phases: desired key, observed key, action key.
  static let phases: [(phase: String, desired: String, observed: String)] = [
    (Phase.cache, "cacheRules", "cache"), (Phase.config, "configRules", "config"),
  ]

  // MARK: desired

  public func desired(_ resource: Resource, in index: DesiredIndex) -> JSONValue {
    Canonical.desired(resource, files: index.files)
  }

  // MARK: observation plan

  struct Entry {
    var id: ResourceID
    var desired: JSONValue?
    var external: [String: String]
    var zoneId: String?
    var workers: [String]
    var buckets: [String]
    var settings: [String]
    var problems: [String]
    /// Nothing exists and nothing was recorded: no calls.
    var nothing: Bool { desired == nil && zoneId == nil }
  }

  func entry(_ t: ObserveTarget) -> Entry {
    let d = (t.desired?.isNull ?? true) ? nil : t.desired
    func recorded(_ prefix: String) -> [String] {
      t.external.keys.filter { $0.hasPrefix(prefix) }.map { String($0.dropFirst(prefix.count)) }
    }
    let workers = Set((d?["workers"]?.object?.keys).map(Array.init) ?? []).union(recorded(ExternalKey.scriptPrefix)).union(
      recorded(ExternalKey.routePrefix))
    let buckets = Set((d?["buckets"]?.object?.keys).map(Array.init) ?? []).union(recorded(ExternalKey.bucketPrefix))
    return Entry(
      id: t.id, desired: d, external: t.external, zoneId: t.external[ExternalKey.zoneId],
      workers: workers.sorted(), buckets: buckets.sorted(),
      settings: (d?["settings"]?.object?.keys).map { $0.sorted() } ?? [],
      problems: d?["problems"]?.array?.compactMap(\.string) ?? [])
  }

  /// The calls observing one entry makes, in order.
  func calls(_ e: Entry, pricing: Pricing) -> [PlannedCall] {
    guard e.problems.isEmpty, !e.nothing else { return [] }
    let s = Self.service
    var ops: [String] = []
    if e.desired != nil { ops.append(Op.zonesList) }
    ops += [Op.rulesetsGet, Op.rulesetsGet]
    ops += e.settings.map { _ in Op.settingsGet }
    if !e.workers.isEmpty { ops += [Op.routesList] + e.workers.map { _ in Op.scriptsContent } }
    ops += e.buckets.map { _ in Op.bucketsGet }
    return ops.map { pricing.call(s, $0) }
  }

  public func observationCalls(_ targets: [ObserveTarget], pricing: Pricing) -> [PlannedCall] {
    targets.sorted { $0.id < $1.id }.flatMap { calls(entry($0), pricing: pricing) }
  }

  // MARK: observe

  public func observe(_ targets: [ObserveTarget], context: DriverContext) async throws -> [ResourceID: ObservationOutcome] {
    var out: [ResourceID: ObservationOutcome] = [:]
    for t in targets.sorted(by: { $0.id < $1.id }) {
      let e = entry(t)
      if !e.problems.isEmpty {
        out[t.id] = .failed("CDNZone/\(t.id.name) cannot be expressed in Cloudflare: " + e.problems.joined(separator: "; "))
        continue
      }
      if e.nothing {
        out[t.id] = .observed(state: .null, external: [:])
        continue
      }
      do {
        out[t.id] = try await observe(e, context: context)
      } catch is CancellationError {
        throw CancellationError()
      } catch {
        out[t.id] = .failed("\(error)")
      }
    }
    return out
  }

  private func observe(_ e: Entry, context: DriverContext) async throws -> ObservationOutcome {
    let res = e.id.name
    var ext: [String: String] = [:]
    var zoneId = e.zoneId
    var accountId = config.accountId ?? e.external[ExternalKey.accountId]
    if let zone = e.desired?["zone"]?.string {
      let (zid, aid) = try await lookupZone(zone, resource: res, context: context)
      zoneId = zid
      if config.accountId == nil, let aid { accountId = aid }
    }
    guard let zoneId else { return .observed(state: .null, external: [:]) }
    ext[ExternalKey.zoneId] = zoneId
    if let accountId { ext[ExternalKey.accountId] = accountId }

    var state: [String: JSONValue] = ["zoneId": .string(zoneId)]
    if let accountId { state["accountId"] = .string(accountId) }
    for p in Self.phases {
      do {
        let (rules, _) = try await readPhase(p.phase, zoneId: zoneId, resource: res, context: context)
        state[p.observed] = Canonical.phaseState(rules)
      } catch let error as CloudflareError where e.desired == nil && error.reason == "7003" {
        // The recorded zone no longer exists: neither does anything ytempire had in it.
        return .observed(state: .null, external: [:])
      }
    }
    var settings: [String: JSONValue] = [:]
    for s in e.settings {
      let r = try await result(
        send(Op.settingsGet, "GET", "/zones/\(Path.escape(zoneId))/settings/\(Path.escape(s))", resource: res, context: context),
        Op.settingsGet, res)
      settings[s] = r["value"] ?? .null
    }
    state["settings"] = .object(settings)

    if !e.workers.isEmpty || !e.buckets.isEmpty {
      guard accountId != nil else {
        throw CloudflareError(
          operation: Op.scriptsContent, resource: res, status: nil, reason: "accountUnknown",
          message:
            "zone \(zoneId) names no account and integrations.cloudflare.accountId is not set: Workers scripts and R2 buckets live in an account"
        )
      }
    }
    var workers: [String: JSONValue] = [:]
    if !e.workers.isEmpty, let accountId {
      let listed = try await result(
        send(Op.routesList, "GET", "/zones/\(Path.escape(zoneId))/workers/routes", resource: res, context: context), Op.routesList, res)
      let routes = (listed.array ?? []).filter { $0["id"]?.string != nil && $0["pattern"]?.string != nil }
      var claimed = Set<String>()
      // Recorded ids first, then the desired pattern, then a route already running the script.
      var found: [String: JSONValue] = [:]
      for n in e.workers {
        if let rid = e.external[ExternalKey.route(n)], let r = routes.first(where: { $0["id"]?.string == rid }) {
          found[n] = r
          claimed.insert(rid)
        }
      }
      for n in e.workers where found[n] == nil {
        guard let want = e.desired?["workers"]?[n]?["route"]?.string else { continue }
        if let r = routes.first(where: { $0["pattern"]?.string == want && !claimed.contains($0["id"]!.string!) }) {
          found[n] = r
          claimed.insert(r["id"]!.string!)
        }
      }
      for n in e.workers where found[n] == nil && e.desired?["workers"]?[n] != nil {
        if let r = routes.first(where: { $0["script"]?.string == n && !claimed.contains($0["id"]!.string!) }) {
          found[n] = r
          claimed.insert(r["id"]!.string!)
        }
      }
      for n in e.workers {
        let bytes = try await send(
          Op.scriptsContent, "GET", "/accounts/\(Path.escape(accountId))/workers/scripts/\(Path.escape(n))/content/v2",
          resource: res, context: context, notFound: ["10007"])
        var w: [String: JSONValue] = ["sha256": bytes.map { .string(Canonical.sha256Hex($0)) } ?? .null, "route": .null]
        if let r = found[n] {
          w["route"] = Self.route(r)
          ext[ExternalKey.route(n)] = r["id"]!.string!
        }
        if bytes != nil { ext[ExternalKey.script(n)] = n }
        workers[n] = .object(w)
      }
    }
    state["workers"] = .object(workers)

    var buckets: [String: JSONValue] = [:]
    if let accountId {
      for b in e.buckets {
        let r = try await send(
          Op.bucketsGet, "GET", "/accounts/\(Path.escape(accountId))/r2/buckets/\(Path.escape(b))",
          resource: res, context: context, notFound: ["10006"])
        guard let r else { continue }
        let bucket = try Self.unwrap(r, Op.bucketsGet, res)
        buckets[b] = ["location": .string((bucket["location"]?.string ?? "").lowercased())]
        ext[ExternalKey.bucket(b)] = b
      }
    }
    state["buckets"] = .object(buckets)
    return .observed(state: .object(state), external: ext)
  }

  static func route(_ r: JSONValue) -> JSONValue {
    ["id": r["id"] ?? .null, "pattern": r["pattern"] ?? .null, "script": r["script"] ?? .null]
  }

  /// The zone's id and account id, by exact name.
  func lookupZone(_ zone: String, resource: String, context: DriverContext) async throws -> (String, String?) {
    let r = try await result(
      send(Op.zonesList, "GET", "/zones?name=\(Path.escape(zone))&page=1&per_page=20", resource: resource, context: context),
      Op.zonesList, resource)
    guard let z = r.array?.first(where: { $0["name"]?.string == zone }), let id = z["id"]?.string, Path.isIdentifier(id) else {
      throw CloudflareError(
        operation: Op.zonesList, resource: resource, status: nil, reason: "zoneNotFound",
        message: "no zone named \(zone) is visible to the API token (ytempire never creates zones)")
    }
    let account = z["account"]?["id"]?.string.flatMap { Path.isIdentifier($0) ? $0 : nil }
    return (id, account)
  }

  /// A phase's rules as they are, and the ruleset's version (nil: never written, 404 code 10003).
  func readPhase(_ phase: String, zoneId: String, resource: String, context: DriverContext) async throws -> ([JSONValue], Int?) {
    let bytes = try await send(
      Op.rulesetsGet, "GET", "/zones/\(Path.escape(zoneId))/rulesets/phases/\(phase)/entrypoint",
      resource: resource, context: context, notFound: ["10003"])
    guard let bytes else { return ([], nil) }
    let rs = try Self.unwrap(bytes, Op.rulesetsGet, resource)
    return (rs["rules"]?.array ?? [], Self.version(rs["version"]))
  }

  /// A ruleset version: a decimal string (or number) of at most 18 digits.
  static func version(_ v: JSONValue?) -> Int? {
    if let s = v?.string, s.count <= 18, let n = Int(s), n >= 0 { return n }
    if let n = v?.int, n >= 0, n < 1_000_000_000_000_000 { return Int(n) }
    return nil
  }

  // MARK: diff

  public func diff(_ input: DiffInput) -> [Action] {
    CloudflareDiff.actions(input, driver: name)
  }

  public var findingTypes: [ConditionType] { [.storageLocationMismatch] }

  public func findings(_ input: DiffInput, now: Date) -> [Finding] {
    CloudflareDiff.findings(input)
  }

  // MARK: apply

  public func apply(_ action: Action, observed: JSONValue, external: [String: String], context: DriverContext) async throws -> ApplyOutcome
  {
    let p = action.payload
    let res = action.resource.name
    let op = action.calls.last?.operation ?? action.key
    guard let zoneId = observed["zoneId"]?.string ?? external[ExternalKey.zoneId], Path.isIdentifier(zoneId) else {
      throw CloudflareError(
        operation: op, resource: res, status: nil, reason: "zoneNotFound", message: "no zone id is known for \(action.resource)")
    }
    let accountId = config.accountId ?? observed["accountId"]?.string ?? external[ExternalKey.accountId]
    var state = observed.object ?? ["zoneId": .string(zoneId)]
    var ext: [String: String?] = [ExternalKey.zoneId: zoneId]
    if let accountId { ext[ExternalKey.accountId] = accountId }
    func account() throws -> String {
      guard let accountId, Path.isIdentifier(accountId) else {
        throw CloudflareError(
          operation: op, resource: res, status: nil, reason: "accountUnknown", message: "no account id is known for \(action.resource)")
      }
      return accountId
    }
    func malformed() -> CloudflareError {
      CloudflareError(
        operation: op, resource: res, status: nil, reason: "malformedAction",
        message: "action \(action.id) lacks what apply needs in its payload")
    }
    let name = p["name"]?.string ?? ""
    var workers = state["workers"]?.object ?? [:]
    var buckets = state["buckets"]?.object ?? [:]

    switch action.key {
    case let k where k.hasPrefix("rules/"):
      guard let phase = p["phase"]?.string, let okey = Self.phases.first(where: { $0.phase == phase })?.observed else { throw malformed() }
      state[okey] = try await writePhase(
        phase, zoneId: zoneId, set: p["set"]?.array, remove: Set(p["remove"]?.array?.compactMap(\.string) ?? []),
        expected: observed[okey]?["fingerprint"]?.string, resource: res, context: context)

    case let k where k.hasPrefix("setting/"):
      guard let id = p["id"]?.string, let value = p["value"] else { throw malformed() }
      let r = try await result(
        send(
          Op.settingsUpdate, "PATCH", "/zones/\(Path.escape(zoneId))/settings/\(Path.escape(id))",
          json: ["value": value], resource: res, context: context), Op.settingsUpdate, res)
      var s = state["settings"]?.object ?? [:]
      s[id] = r["value"] ?? value
      state["settings"] = .object(s)

    case let k where k.hasPrefix("script/"):
      let a = try account()
      if action.operation == .delete {
        _ = try await send(
          Op.scriptsDelete, "DELETE", "/accounts/\(Path.escape(a))/workers/scripts/\(Path.escape(name))",
          resource: res, context: context, notFound: ["10007"])
        ext[ExternalKey.script(name)] = .some(nil)
        if var w = workers[name]?.object {
          w["sha256"] = .null
          workers[name] = w["route"] == .null || w["route"] == nil ? nil : .object(w)
        }
      } else {
        guard let file = p["scriptFile"]?.string, let sha = p["sha256"]?.string else { throw malformed() }
        guard let bytes = context.desired.files.read(file) else {
          throw CloudflareError(
            operation: Op.scriptsUpload, resource: res, status: nil, reason: "scriptMissing", message: "the revision has no file \(file)")
        }
        guard Canonical.sha256Hex(bytes) == sha else {
          throw CloudflareError(
            operation: Op.scriptsUpload, resource: res, status: nil, reason: "scriptChanged",
            message: "\(file) is not the file the plan was made with: plan again")
        }
        let (body, contentType) = Multipart.workerUpload(name: name, script: bytes)
        _ = try await result(
          send(
            Op.scriptsUpload, "PUT", "/accounts/\(Path.escape(a))/workers/scripts/\(Path.escape(name))",
            body: body, contentType: contentType, resource: res, context: context), Op.scriptsUpload, res)
        ext[ExternalKey.script(name)] = name
        var w = workers[name]?.object ?? ["route": .null]
        w["sha256"] = .string(sha)
        workers[name] = .object(w)
      }

    case let k where k.hasPrefix("route/"):
      var w = workers[name]?.object ?? ["sha256": .null]
      switch action.operation {
      case .create:
        guard let pattern = p["pattern"]?.string else { throw malformed() }
        let r = try await result(
          send(
            Op.routesCreate, "POST", "/zones/\(Path.escape(zoneId))/workers/routes",
            json: ["pattern": .string(pattern), "script": .string(name)], resource: res, context: context), Op.routesCreate, res)
        guard let rid = r["id"]?.string, Path.isIdentifier(rid) else {
          throw CloudflareError(
            operation: Op.routesCreate, resource: res, status: nil, reason: "malformedResponse",
            message: "the created route came back without an id")
        }
        ext[ExternalKey.route(name)] = rid
        w["route"] = ["id": .string(rid), "pattern": .string(pattern), "script": .string(name)]
      case .update:
        guard let pattern = p["pattern"]?.string, let rid = p["id"]?.string, Path.isIdentifier(rid) else { throw malformed() }
        let r = try await result(
          send(
            Op.routesUpdate, "PUT", "/zones/\(Path.escape(zoneId))/workers/routes/\(Path.escape(rid))",
            json: ["pattern": .string(pattern), "script": .string(name)], resource: res, context: context), Op.routesUpdate, res)
        ext[ExternalKey.route(name)] = rid
        w["route"] = Self.route(r["id"] == nil ? ["id": .string(rid), "pattern": .string(pattern), "script": .string(name)] : r)
      case .delete:
        guard let rid = p["id"]?.string, Path.isIdentifier(rid) else { throw malformed() }
        _ = try await send(
          Op.routesDelete, "DELETE", "/zones/\(Path.escape(zoneId))/workers/routes/\(Path.escape(rid))",
          resource: res, context: context, notFound: ["*"])
        ext[ExternalKey.route(name)] = .some(nil)
        w["route"] = .null
      }
      workers[name] = (w["route"] == .null && (w["sha256"] ?? .null) == .null) ? nil : .object(w)

    case let k where k.hasPrefix("bucket/"):
      let a = try account()
      if action.operation == .delete {
        _ = try await send(
          Op.bucketsDelete, "DELETE", "/accounts/\(Path.escape(a))/r2/buckets/\(Path.escape(name))",
          resource: res, context: context, notFound: ["10006"])
        ext[ExternalKey.bucket(name)] = .some(nil)
        buckets[name] = nil
      } else {
        var body: [String: JSONValue] = ["name": .string(name)]
        if let hint = p["locationHint"]?.string { body["locationHint"] = .string(hint) }
        let r = try await result(
          send(
            Op.bucketsCreate, "POST", "/accounts/\(Path.escape(a))/r2/buckets",
            json: .object(body), resource: res, context: context), Op.bucketsCreate, res)
        ext[ExternalKey.bucket(name)] = name
        buckets[name] = ["location": .string((r["location"]?.string ?? p["locationHint"]?.string ?? "").lowercased())]
      }

    default:
      throw malformed()
    }
    if state["workers"] != nil || !workers.isEmpty { state["workers"] = .object(workers) }
    if state["buckets"] != nil || !buckets.isEmpty { state["buckets"] = .object(buckets) }
    return ApplyOutcome(external: ext, observed: .object(state))
  }

  /// The whole-phase write: re-read, merge onto what is there now, `PUT`, verify.
  func writePhase(
    _ phase: String, zoneId: String, set: [JSONValue]?, remove: Set<String>, expected: String?,
    resource: String, context: DriverContext
  ) async throws -> JSONValue {
    let (current, version) = try await readPhase(phase, zoneId: zoneId, resource: resource, context: context)
    if let expected, Canonical.fingerprint(current) != expected {
      context.log(
        "cloudflare: the \(phase) ruleset of CDNZone/\(resource) changed since it was observed; writing onto the rules as they are now")
    }
    let merged = Canonical.merge(current, set: set, remove: remove)
    let body: JSONValue = ["rules": .array(merged)]
    let rs = try await result(
      send(
        Op.rulesetsUpdate, "PUT", "/zones/\(Path.escape(zoneId))/rulesets/phases/\(phase)/entrypoint",
        json: body, resource: resource, context: context), Op.rulesetsUpdate, resource)
    let written = rs["rules"]?.array ?? []
    // Verify: ours as intended, everyone else's as they were, and no other write in between.
    let wantOwned = merged.filter { Canonical.isOwned($0["ref"]?.string) }.map(Canonical.rule)
    let gotOwned = written.filter { Canonical.isOwned($0["ref"]?.string) }.map(Canonical.rule)
    var problems: [String] = []
    if wantOwned != gotOwned { problems.append("ytempire's rules are not as written") }
    if Canonical.foreign(written) != Canonical.foreign(current) { problems.append("rules ytempire does not own changed") }
    if let version, let after = Self.version(rs["version"]), after != version + 1 {
      problems.append("the ruleset went from version \(version) to \(after), so another write happened at the same time")
    }
    if !problems.isEmpty {
      throw CloudflareError(
        operation: Op.rulesetsUpdate, resource: resource, status: nil, reason: "concurrentEdit",
        message: "after writing the \(phase) ruleset: " + problems.joined(separator: "; "))
    }
    return Canonical.phaseState(written)
  }

  // MARK: calls

  /// One Cloudflare call. Returns the body of a 2xx answer, or nil for a 404 whose code is
  /// in `notFound` (`"*"`: any 404); anything else becomes a `CloudflareError`.
  func send(
    _ operation: String, _ method: String, _ path: String, json: JSONValue? = nil, body: [UInt8]? = nil, contentType: String? = nil,
    resource: String, context: DriverContext, notFound: Set<String> = []
  ) async throws -> [UInt8]? {
    let token: String
    do { token = try config.token.resolve() } catch {
      throw CloudflareError(
        operation: operation, resource: resource, status: nil, reason: "secretUnavailable",
        message: "\(config.token.name) cannot be resolved: \(error)")
    }
    var headers: HTTPHeaders = ["Authorization": "Bearer \(token)", "Accept": "application/json"]
    var bytes = body
    if let json {
      bytes = json.canonicalBytes
      headers.add("Content-Type", "application/json")
    } else if let contentType {
      headers.add("Content-Type", contentType)
    }
    let request = HTTPRequest(method: method, url: config.endpoint + path, headers: headers, body: bytes)
    let call = context.pricing.call(Self.service, operation)
    var failure: (status: Int?, reason: String, message: String)
    do {
      let r = try await context.client(Self.service).send(request, call: call)
      if (200..<300).contains(r.status) { return r.body }
      let (reason, message) = Envelope.error(r.body, status: r.status)
      failure = (r.status, reason, message)
    } catch let e where CallFailure(e) != nil {
      let f = CallFailure(e)!
      failure = (f.status, f.reason ?? f.status.map { "HTTP \($0)" } ?? "transportError", f.message)
    }
    if failure.status == 404 && (notFound.contains("*") || notFound.contains(failure.reason)) { return nil }
    throw CloudflareError(
      operation: operation, resource: resource, status: failure.status, reason: failure.reason,
      message: Envelope.scrub(failure.message, [token]))
  }

  /// The envelope's `result` (nil body: `null`).
  func result(_ body: [UInt8]?, _ operation: String, _ resource: String) throws -> JSONValue {
    guard let body else { return .null }
    return try Self.unwrap(body, operation, resource)
  }

  static func unwrap(_ body: [UInt8], _ operation: String, _ resource: String) throws -> JSONValue {
    guard let v = try? JSONValue.parse(body, maxDepth: 32), v.object != nil else {
      throw CloudflareError(
        operation: operation, resource: resource, status: nil, reason: "malformedResponse",
        message: "the answer is not Cloudflare's JSON envelope")
    }
    if v["success"]?.bool == false {
      let (reason, message) = Envelope.error(body, status: 200)
      throw CloudflareError(operation: operation, resource: resource, status: 200, reason: reason, message: message)
    }
    return v["result"] ?? .null
  }
}

enum Path {
  /// One path segment or query value (`PercentEncoding.encode`; kept for its two dozen callers).
  static func escape(_ s: String) -> String { PercentEncoding.encode(s) }
  /// An id Cloudflare hands out (zone, account, route): letters and digits, at most 64.
  static func isIdentifier(_ s: String) -> Bool {
    !s.isEmpty && s.count <= 64 && s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
  }
}

enum Multipart {
  /// A service-worker upload: the `metadata` part names the script part in `body_part`.
  static func workerUpload(name: String, script: [UInt8]) -> (body: [UInt8], contentType: String) {
    let boundary = "ytempire-" + Canonical.sha256Hex(script).prefix(24)
    let file = "\(name).js"
    var b: [UInt8] = []
    func add(_ s: String) { b += Array(s.utf8) }
    add("--\(boundary)\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n")
    add(JSONValue.object(["body_part": .string(file)]).canonicalString)
    add(
      "\r\n--\(boundary)\r\nContent-Disposition: form-data; name=\"\(file)\"; filename=\"\(file)\"\r\nContent-Type: application/javascript\r\n\r\n"
    )
    b += script
    add("\r\n--\(boundary)--\r\n")
    return (b, "multipart/form-data; boundary=\(boundary)")
  }
}
