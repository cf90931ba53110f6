import Foundation
import GRDB
import Synchronization

/// Keeps the world in a SQLite file so a sandbox survives a restart.
final class StateStore: Sendable {
  let queue: DatabaseQueue

  init(path: String) throws {
    queue = try DatabaseQueue(path: path)
    try queue.write { db in
      try db.execute(
        sql: "CREATE TABLE IF NOT EXISTS sandbox_state (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL, saved_at TEXT NOT NULL)")
    }
  }

  func load() throws -> World? {
    let text = try queue.read { db in try String.fetchOne(db, sql: "SELECT json FROM sandbox_state WHERE id = 1") }
    guard let text else { return nil }
    return try JSONDecoder().decode(World.self, from: Data(text.utf8))
  }

  func save(_ w: World) throws {
    let data = try JSONEncoder().encode(w)
    let text = String(decoding: data, as: UTF8.self)
    try queue.write { db in
      try db.execute(
        sql: "INSERT OR REPLACE INTO sandbox_state (id, json, saved_at) VALUES (1, ?, ?)",
        arguments: [text, Timestamp.rfc3339(Date(), digits: 3)])
    }
  }
}

/// The sandbox without its HTTP server: state, faults, counters, clock, and request dispatch.
final class SandboxCore: Sendable {
  /// The world in shards, one lock per emulator (State.swift).
  let state: WorldState
  let faults = Mutex(FaultEngine())
  let calls = Mutex<[String: Int]>([:])
  /// What the notification receivers got (in memory only: Notify.swift).
  let notify = Mutex(NotifyState())
  let clock: SandboxClock
  let store: StateStore?
  let seed: SeedReport
  /// Whole-state reads (the admin dump of the world or of one emulator) are converted here, one
  /// at a time and off Swift's cooperative threads: a large dump must not occupy the few threads
  /// every other request runs on (two on a two-core machine).
  private let bulk = DispatchQueue(label: "ytempire.sandbox.bulk", qos: .utility)

  /// `saveInterval`: how long a change waits for others before the state file is written (coalescing).
  init(world: World, clock: SandboxClock, store: StateStore?, seed: SeedReport, saveInterval: Duration = .milliseconds(200)) {
    self.state = WorldState(world, store: store, saveInterval: saveInterval)
    self.clock = clock
    self.store = store
    self.seed = seed
  }

  /// The whole world under all locks, for tests that inspect or edit it directly.
  var world: WorldAccess { WorldAccess(state: state) }

  /// Writes what the state file does not hold yet; the background writer is stopped (shutdown).
  func close() async { await state.close() }

  /// Answers one request. Never throws: every input gets an HTTP answer.
  func respond(_ r: SandboxRequest) async -> SandboxResponse {
    if r.method == "GET" && (r.path == "/_sandbox/state" || r.path == "/_sandbox/state/" || r.path.hasPrefix("/_sandbox/state/")),
      r.path.split(separator: "/").count <= 3
    {
      return await withCheckedContinuation { (c: CheckedContinuation<SandboxResponse, Never>) in
        bulk.async { c.resume(returning: self.admin(r)) }
      }
    }
    if r.path == "/_sandbox" || r.path.hasPrefix("/_sandbox/") { return admin(r) }
    guard let e = Emulator.of(path: r.path) else {
      return .json(404, ["error": .string("no emulator serves \(r.path); see docs/sandbox.md for the routes")])
    }
    calls.withLock { $0["\(e.rawValue) \(r.method) \(r.path)", default: 0] += 1 }
    let decision = faults.withLock { $0.decide(e, r) }
    if decision.delayMs > 0 { try? await Task.sleep(for: .milliseconds(decision.delayMs)) }
    if var answer = decision.answer {
      Self.escapeHTML(&answer, for: e)
      if e == .youtube {
        // Every YouTube request costs at least one unit, failed ones included.
        let now = clock.now
        state.youtube.write { y in
          YouTubeEmulator.rollQuotaDay(&y, now: now)
          YouTubeEmulator.charge(&y, 1)
        }
      }
      return answer
    }
    let now = clock.now
    // Each emulator under its own lock only; the credentials are read once, briefly.
    let env = EmulatorEnv(credentials: state.common.read { $0.credentials }, common: state.common)
    // Reads that change nothing (n8n and Vault GETs) do not count as changes for the state file;
    // YouTube and Cloudflare count every request (quota, request window).
    let reads = r.method == "GET" || r.method == "HEAD"
    var response: SandboxResponse
    switch e {
    case .youtube: response = state.youtube.write { YouTubeEmulator.handle(r, &$0, env, now: now) }
    case .oauth: response = state.youtube.write { YouTubeEmulator.token(r, &$0, env, now: now) }
    case .n8n:
      response =
        reads
        ? state.n8n.update { N8nEmulator.handle(r, &$0, env, now: now) }
        : state.n8n.write { N8nEmulator.handle(r, &$0, env, now: now) }
    case .cloudflare: response = state.cloudflare.write { CloudflareEmulator.handle(r, &$0, env, now: now) }
    case .vault:
      response =
        reads
        ? state.vault.update { VaultEmulator.handle(r, &$0, env, now: now) }
        : state.vault.write { VaultEmulator.handle(r, &$0, env, now: now) }
    case .github: response = notify.withLock { NotifyEmulator.github(r, &$0, now: now) }
    case .slack: response = notify.withLock { NotifyEmulator.slack(r, &$0, now: now) }
    case .hooks: response = notify.withLock { NotifyEmulator.hook(r, &$0, now: now) }
    }
    Self.escapeHTML(&response, for: e)
    if decision.reset { response.cutAfter = response.body.count / 2 }
    return response
  }

  /// Google's and Go's JSON encoders write `<`, `>` and `&` as `\u003c`, `\u003e`, `\u0026`
  /// (the "escaped HTML" in YouTube's messages); n8n's does not. In a JSON text these bytes
  /// can only occur inside strings, so replacing them keeps the document's meaning.
  static func escapeHTML(_ r: inout SandboxResponse, for e: Emulator) {
    guard e != .n8n, r.headers.contains(where: { $0.0 == "Content-Type" && $0.1.hasPrefix("application/json") }),
      r.body.contains(where: { $0 == 0x3c || $0 == 0x3e || $0 == 0x26 })
    else { return }
    var out: [UInt8] = []
    out.reserveCapacity(r.body.count + 32)
    for b in r.body {
      switch b {
      case 0x3c: out += Array("\\u003c".utf8)
      case 0x3e: out += Array("\\u003e".utf8)
      case 0x26: out += Array("\\u0026".utf8)
      default: out.append(b)
      }
    }
    r.body = out
  }

  // MARK: admin API

  func adminError(_ status: Int, _ message: String) -> SandboxResponse { .json(status, ["error": .string(message)]) }

  func admin(_ r: SandboxRequest) -> SandboxResponse {
    let segs = r.path.split(separator: "/").dropFirst().map { String($0).removingPercentEncoding ?? String($0) }
    switch (r.method, segs.first ?? "") {
    case ("GET", ""):
      return .json(
        200,
        [
          "routes": [
            "/_sandbox/state", "/_sandbox/calls", "/_sandbox/quota", "/_sandbox/faults",
            "/_sandbox/clock", "/_sandbox/credentials", "/_sandbox/notifications",
          ]
        ])
    case (_, "state"): return adminState(r, Array(segs.dropFirst()))
    case ("GET", "calls"):
      let c = calls.withLock { $0 }
      var byEmulator: [String: JSON] = [:]
      for (k, v) in c {
        let e = String(k.split(separator: " ").first ?? "")
        byEmulator[e] = .int((byEmulator[e]?.int ?? 0) + v)
      }
      return .json(
        200,
        [
          "calls": .object(c.mapValues { .int($0) }), "byEmulator": .object(byEmulator),
          "total": .int(c.values.reduce(0, +)),
        ])
    case ("DELETE", "calls"):
      calls.withLock { $0 = [:] }
      return .empty(204)
    case ("GET", "notifications"): return .json(200, notify.withLock { $0.json })
    case ("DELETE", "notifications"):
      notify.withLock { $0 = NotifyState() }
      return .empty(204)
    case ("GET", "quota"): return .json(200, quotaJSON())
    case ("PUT", "quota"), ("PATCH", "quota"): return setQuota(r)
    case ("GET", "faults"):
      let f = faults.withLock { $0 }
      return .json(200, ["rules": (try? JSONBridge.toJSON(f.rules)) ?? [], "seed": .int(Int(truncatingIfNeeded: f.seed))])
    case ("PUT", "faults"):
      guard case .object(let o)? = r.json, let spec = o["spec"]?.string else {
        return adminError(400, "expected {\"spec\": \"…\", \"seed\": N}")
      }
      let seed = o["seed"]?.int.map { UInt64(truncatingIfNeeded: $0) }
      do {
        let rules = try FaultSpec.parse(spec)
        faults.withLock { $0.set(rules, seed: seed) }
        return .json(200, ["rules": (try? JSONBridge.toJSON(rules)) ?? []])
      } catch {
        return adminError(400, error.description)
      }
    case ("DELETE", "faults"):
      faults.withLock { $0.set([]) }
      return .empty(204)
    case ("GET", "clock"): return .json(200, ["now": .string(Timestamp.rfc3339(clock.now, digits: 3))])
    case ("POST", "clock"):
      guard let s = r.json?["advanceSeconds"], let secs = s.int, (0...InputLimits.maxClockAdvance).contains(secs) else {
        return adminError(400, "expected {\"advanceSeconds\": N} with N from 0 to \(InputLimits.maxClockAdvance)")
      }
      guard clock.advance(by: TimeInterval(secs), limit: TimeInterval(InputLimits.maxClockAdvance)) else {
        return adminError(400, "the clock may run at most \(InputLimits.maxClockAdvance) seconds ahead in total")
      }
      return .json(200, ["now": .string(Timestamp.rfc3339(clock.now, digits: 3))])
    case ("GET", "credentials"):
      let c = state.common.read { $0.credentials }
      return .json(200, ((try? JSONBridge.toJSON(c)) ?? [:]).merged(with: ["channels": (try? JSONBridge.toJSON(seed.channels)) ?? []]))
    default:
      return adminError(404, "no admin route \(r.method) \(r.path)")
    }
  }

  func quotaJSON() -> JSON {
    let now = clock.now
    let yt = state.youtube.update { y in
      YouTubeEmulator.rollQuotaDay(&y, now: now)
      return (used: y.quotaUsed, quota: y.quota, day: y.quotaDay)
    }
    let cf = state.cloudflare.read { $0 }
    let t = now.timeIntervalSince1970
    return [
      "youtube": [
        "used": .int(yt.used), "limit": .int(yt.quota.dailyUnits),
        "remaining": .int(max(0, yt.quota.dailyUnits - yt.used)),
        "day": .string(yt.day),
        "resetsAt": .string(Timestamp.rfc3339(Timestamp.nextPacificMidnight(after: now), digits: 0)),
        "costs": .object(yt.quota.costs.mapValues { .int($0) }),
      ],
      "cloudflare": [
        "requestsInWindow": .int(cf.recent.filter { $0 > t - cf.limits.window }.count),
        "limit": .int(cf.limits.requests), "windowSeconds": .int(Int(cf.limits.window)),
        "blocked": .bool(cf.blockedUntil > t),
        "blockedUntil": cf.blockedUntil > t ? .string(Timestamp.rfc3339(Date(timeIntervalSince1970: cf.blockedUntil), digits: 0)) : .null,
      ],
    ]
  }

  func setQuota(_ r: SandboxRequest) -> SandboxResponse {
    guard case .object(let o)? = r.json else { return adminError(400, "expected a JSON object") }
    if let y = o["youtube"] {
      guard case .object(let yo) = y else { return adminError(400, "youtube must be an object") }
      let units = 0...InputLimits.maxQuotaUnits
      if let u = yo["used"], u.int.map(units.contains) != true {
        return adminError(400, "youtube.used must be an integer from 0 to \(InputLimits.maxQuotaUnits)")
      }
      if let u = yo["limit"], u.int.map(units.contains) != true {
        return adminError(400, "youtube.limit must be an integer from 0 to \(InputLimits.maxQuotaUnits)")
      }
      var costs: [String: Int] = [:]
      if let c = yo["costs"] {
        guard case .object(let co) = c else { return adminError(400, "youtube.costs must be an object") }
        for (k, v) in co {
          guard let n = v.int, units.contains(n) else {
            return adminError(400, "youtube.costs.\(k) must be an integer from 0 to \(InputLimits.maxQuotaUnits)")
          }
          costs[k] = n
        }
      }
      let now = clock.now
      state.youtube.write { y in
        YouTubeEmulator.rollQuotaDay(&y, now: now)
        if let u = yo["used"]?.int { y.quotaUsed = u }
        if let l = yo["limit"]?.int { y.quota.dailyUnits = l }
        for (k, v) in costs { y.quota.costs[k] = v }
      }
    }
    if let c = o["cloudflare"] {
      guard case .object(let co) = c else { return adminError(400, "cloudflare must be an object") }
      for (k, hi) in [
        ("limit", InputLimits.maxRequestLimit), ("windowSeconds", InputLimits.maxWindowSeconds),
        ("blockSeconds", InputLimits.maxWindowSeconds),
      ] {
        if let v = co[k], v.int.map({ (1...hi).contains($0) }) != true {
          return adminError(400, "cloudflare.\(k) must be an integer from 1 to \(hi)")
        }
      }
      state.cloudflare.write { c in
        if let l = co["limit"]?.int { c.limits.requests = l }
        if let s = co["windowSeconds"]?.int { c.limits.window = TimeInterval(s) }
        if let s = co["blockSeconds"]?.int { c.limits.block = TimeInterval(s) }
        if co["unblock"]?.bool == true {
          c.blockedUntil = 0
          c.recent = []
        }
      }
    }
    return .json(200, quotaJSON())
  }

  /// GET/PUT/PATCH/DELETE on any node of the world, addressed by path segments. Only the shard
  /// the path names is locked, and only briefly for a GET: its snapshot is converted after.
  func adminState(_ r: SandboxRequest, _ path: [String]) -> SandboxResponse {
    let notFound = adminError(404, "no state at /\(path.joined(separator: "/"))")
    if r.method == "GET" {
      guard let top = path.first else {
        // The whole world: one short snapshot per shard, converted with no lock held.
        guard let node = try? JSONBridge.toJSON(state.snapshot().world) else { return adminError(500, "cannot encode state") }
        return .json(200, node)
      }
      let found: JSON?
      do {
        switch top {
        case "youtube": found = try AdminNodes.get(state.youtube.snapshot().state, path[1...])
        case "n8n": found = try AdminNodes.get(state.n8n.snapshot().state, path[1...])
        case "cloudflare": found = try AdminNodes.get(state.cloudflare.snapshot().state, path[1...])
        case "vault": found = try AdminNodes.get(state.vault.snapshot().state, path[1...])
        case "credentials", "serial": found = try AdminNodes.get(state.common.snapshot().state, path[...])
        default: found = nil
        }
      } catch {
        return adminError(500, "cannot encode state")
      }
      guard let found else { return notFound }
      return .json(200, found)
    }
    guard ["PUT", "PATCH", "DELETE"].contains(r.method) else { return adminError(405, "use GET, PUT, PATCH or DELETE") }
    guard let top = path.first else {
      return adminError(400, "address a node below /_sandbox/state, e.g. /_sandbox/state/youtube/channels/UC…")
    }
    var value: JSON?
    if r.method != "DELETE" {
      guard let v = r.json else { return adminError(400, "the body must be JSON") }
      value = v
    }
    let found: Bool
    do {
      switch top {
      case "youtube": found = try state.youtube.write { try AdminNodes.edit(&$0, path[1...], method: r.method, value: value) }
      case "n8n": found = try state.n8n.write { try AdminNodes.edit(&$0, path[1...], method: r.method, value: value) }
      case "cloudflare": found = try state.cloudflare.write { try AdminNodes.edit(&$0, path[1...], method: r.method, value: value) }
      case "vault": found = try state.vault.write { try AdminNodes.edit(&$0, path[1...], method: r.method, value: value) }
      case "credentials", "serial": found = try state.common.write { try AdminNodes.edit(&$0, path[...], method: r.method, value: value) }
      default: found = false
      }
    } catch {
      return adminError(400, "the change does not fit the sandbox state: \(error)")
    }
    guard found else { return notFound }
    return r.method == "DELETE"
      ? .empty(204) : adminState(SandboxRequest(method: "GET", path: r.path, rawQuery: nil, headers: [:], body: []), path)
  }

  static func edit(_ node: JSON, _ path: ArraySlice<String>, method: String, value: JSON?) -> JSON? {
    guard let key = path.first else {
      switch method {
      case "PUT": return value
      case "PATCH": return node.merged(with: value ?? .null)
      default: return nil
      }
    }
    let rest = path.dropFirst()
    if case .object(var o) = node {
      if rest.isEmpty && method == "DELETE" {
        guard o[key] != nil else { return nil }
        o[key] = nil
        return .object(o)
      }
      let child: JSON? = o[key] ?? (rest.isEmpty ? JSON.null : nil)
      guard let child, let updated = edit(child, rest, method: method, value: value) else { return nil }
      o[key] = updated
      return .object(o)
    }
    if case .array(var a) = node, let i = Int(key), a.indices.contains(i) {
      if rest.isEmpty && method == "DELETE" {
        a.remove(at: i)
        return .array(a)
      }
      guard let updated = edit(a[i], rest, method: method, value: value) else { return nil }
      a[i] = updated
      return .array(a)
    }
    return nil
  }
}
