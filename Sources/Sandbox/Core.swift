import Foundation
import GRDB
import Synchronization

/// Keeps the world in a SQLite file so a sandbox survives a restart.
final class StateStore: Sendable {
    let queue: DatabaseQueue

    init(path: String) throws {
        queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS sandbox_state (id INTEGER PRIMARY KEY CHECK (id = 1), json TEXT NOT NULL, saved_at TEXT NOT NULL)")
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
            try db.execute(sql: "INSERT OR REPLACE INTO sandbox_state (id, json, saved_at) VALUES (1, ?, ?)",
                           arguments: [text, Timestamp.rfc3339(Date(), digits: 3)])
        }
    }
}

/// The sandbox without its HTTP server: state, faults, counters, clock, and request dispatch.
final class SandboxCore: Sendable {
    let world: Mutex<World>
    let faults = Mutex(FaultEngine())
    let calls = Mutex<[String: Int]>([:])
    let clock: SandboxClock
    let store: StateStore?
    let seed: SeedReport

    init(world: World, clock: SandboxClock, store: StateStore?, seed: SeedReport) {
        self.world = Mutex(world)
        self.clock = clock
        self.store = store
        self.seed = seed
    }

    /// Answers one request. Never throws: every input gets an HTTP answer.
    func respond(_ r: SandboxRequest) async -> SandboxResponse {
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
                mutate { w in
                    YouTubeEmulator.rollQuotaDay(&w, now: clock.now)
                    YouTubeEmulator.charge(&w, 1)
                }
            }
            return answer
        }
        let now = clock.now
        var response = mutate { w in
            switch e {
            case .youtube: YouTubeEmulator.handle(r, &w, now: now)
            case .oauth: YouTubeEmulator.token(r, &w, now: now)
            case .n8n: N8nEmulator.handle(r, &w, now: now)
            case .cloudflare: CloudflareEmulator.handle(r, &w, now: now)
            case .vault: VaultEmulator.handle(r, &w, now: now)
            }
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
              r.body.contains(where: { $0 == 0x3c || $0 == 0x3e || $0 == 0x26 }) else { return }
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

    /// Runs `body` on the world and saves it when it changed and a state file is configured.
    @discardableResult
    func mutate<T>(_ body: (inout World) -> T) -> T {
        world.withLock { w in
            guard let store else { return body(&w) }
            let before = w
            let result = body(&w)
            if w != before {
                do { try store.save(w) } catch { FileHandle.standardError.write(Data("sandbox: cannot save state: \(error)\n".utf8)) }
            }
            return result
        }
    }

    // MARK: admin API

    func adminError(_ status: Int, _ message: String) -> SandboxResponse { .json(status, ["error": .string(message)]) }

    func admin(_ r: SandboxRequest) -> SandboxResponse {
        let segs = r.path.split(separator: "/").dropFirst().map { String($0).removingPercentEncoding ?? String($0) }
        switch (r.method, segs.first ?? "") {
        case ("GET", ""): return .json(200, ["routes": ["/_sandbox/state", "/_sandbox/calls", "/_sandbox/quota", "/_sandbox/faults",
                                                        "/_sandbox/clock", "/_sandbox/credentials"]])
        case (_, "state"): return adminState(r, Array(segs.dropFirst()))
        case ("GET", "calls"):
            let c = calls.withLock { $0 }
            var byEmulator: [String: JSON] = [:]
            for (k, v) in c {
                let e = String(k.split(separator: " ").first ?? "")
                byEmulator[e] = .int((byEmulator[e]?.int ?? 0) + v)
            }
            return .json(200, ["calls": .object(c.mapValues { .int($0) }), "byEmulator": .object(byEmulator),
                               "total": .int(c.values.reduce(0, +))])
        case ("DELETE", "calls"):
            calls.withLock { $0 = [:] }
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
            let c = world.withLock { $0.credentials }
            return .json(200, ((try? JSONBridge.toJSON(c)) ?? [:]).merged(with: ["channels": (try? JSONBridge.toJSON(seed.channels)) ?? []]))
        default:
            return adminError(404, "no admin route \(r.method) \(r.path)")
        }
    }

    func quotaJSON() -> JSON {
        let now = clock.now
        return mutate { w in
            YouTubeEmulator.rollQuotaDay(&w, now: now)
            let t = now.timeIntervalSince1970
            let cf = w.cloudflare
            return [
                "youtube": [
                    "used": .int(w.youtube.quotaUsed), "limit": .int(w.youtube.quota.dailyUnits),
                    "remaining": .int(max(0, w.youtube.quota.dailyUnits - w.youtube.quotaUsed)),
                    "day": .string(w.youtube.quotaDay),
                    "resetsAt": .string(Timestamp.rfc3339(Timestamp.nextPacificMidnight(after: now), digits: 0)),
                    "costs": .object(w.youtube.quota.costs.mapValues { .int($0) }),
                ],
                "cloudflare": [
                    "requestsInWindow": .int(cf.recent.filter { $0 > t - cf.limits.window }.count),
                    "limit": .int(cf.limits.requests), "windowSeconds": .int(Int(cf.limits.window)),
                    "blocked": .bool(cf.blockedUntil > t),
                    "blockedUntil": cf.blockedUntil > t ? .string(Timestamp.rfc3339(Date(timeIntervalSince1970: cf.blockedUntil), digits: 0)) : .null,
                ],
            ]
        }
    }

    func setQuota(_ r: SandboxRequest) -> SandboxResponse {
        guard case .object(let o)? = r.json else { return adminError(400, "expected a JSON object") }
        if let y = o["youtube"] {
            guard case .object(let yo) = y else { return adminError(400, "youtube must be an object") }
            let units = 0...InputLimits.maxQuotaUnits
            if let u = yo["used"], u.int.map(units.contains) != true { return adminError(400, "youtube.used must be an integer from 0 to \(InputLimits.maxQuotaUnits)") }
            if let u = yo["limit"], u.int.map(units.contains) != true { return adminError(400, "youtube.limit must be an integer from 0 to \(InputLimits.maxQuotaUnits)") }
            var costs: [String: Int] = [:]
            if let c = yo["costs"] {
                guard case .object(let co) = c else { return adminError(400, "youtube.costs must be an object") }
                for (k, v) in co {
                    guard let n = v.int, units.contains(n) else { return adminError(400, "youtube.costs.\(k) must be an integer from 0 to \(InputLimits.maxQuotaUnits)") }
                    costs[k] = n
                }
            }
            let now = clock.now
            mutate { w in
                YouTubeEmulator.rollQuotaDay(&w, now: now)
                if let u = yo["used"]?.int { w.youtube.quotaUsed = u }
                if let l = yo["limit"]?.int { w.youtube.quota.dailyUnits = l }
                for (k, v) in costs { w.youtube.quota.costs[k] = v }
            }
        }
        if let c = o["cloudflare"] {
            guard case .object(let co) = c else { return adminError(400, "cloudflare must be an object") }
            for (k, hi) in [("limit", InputLimits.maxRequestLimit), ("windowSeconds", InputLimits.maxWindowSeconds), ("blockSeconds", InputLimits.maxWindowSeconds)] {
                if let v = co[k], v.int.map({ (1...hi).contains($0) }) != true { return adminError(400, "cloudflare.\(k) must be an integer from 1 to \(hi)") }
            }
            mutate { w in
                if let l = co["limit"]?.int { w.cloudflare.limits.requests = l }
                if let s = co["windowSeconds"]?.int { w.cloudflare.limits.window = TimeInterval(s) }
                if let s = co["blockSeconds"]?.int { w.cloudflare.limits.block = TimeInterval(s) }
                if co["unblock"]?.bool == true { w.cloudflare.blockedUntil = 0; w.cloudflare.recent = [] }
            }
        }
        return .json(200, quotaJSON())
    }

    /// GET/PUT/PATCH/DELETE on any node of the world, addressed by path segments.
    func adminState(_ r: SandboxRequest, _ path: [String]) -> SandboxResponse {
        if r.method == "GET" {
            let w = world.withLock { $0 }
            guard var node = try? JSONBridge.toJSON(w) else { return adminError(500, "cannot encode state") }
            for p in path {
                if let o = node.object, let v = o[p] { node = v } else if let a = node.array, let i = Int(p), a.indices.contains(i) { node = a[i] } else {
                    return adminError(404, "no state at /\(path.joined(separator: "/"))")
                }
            }
            return .json(200, node)
        }
        guard ["PUT", "PATCH", "DELETE"].contains(r.method) else { return adminError(405, "use GET, PUT, PATCH or DELETE") }
        guard !path.isEmpty else { return adminError(400, "address a node below /_sandbox/state, e.g. /_sandbox/state/youtube/channels/UC…") }
        var value: JSON?
        if r.method != "DELETE" {
            guard let v = r.json else { return adminError(400, "the body must be JSON") }
            value = v
        }
        var failure: SandboxResponse?
        mutate { w in
            do {
                var root = try JSONBridge.toJSON(w)
                guard let updated = Self.edit(root, path[...], method: r.method, value: value) else {
                    failure = adminError(404, "no state at /\(path.joined(separator: "/"))")
                    return
                }
                root = updated
                w = try JSONBridge.fromJSON(root, as: World.self)
            } catch {
                failure = adminError(400, "the change does not fit the sandbox state: \(error)")
            }
        }
        if let failure { return failure }
        return r.method == "DELETE" ? .empty(204) : adminState(SandboxRequest(method: "GET", path: r.path, rawQuery: nil, headers: [:], body: []), path)
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
            if rest.isEmpty && method == "DELETE" { a.remove(at: i); return .array(a) }
            guard let updated = edit(a[i], rest, method: method, value: value) else { return nil }
            a[i] = updated
            return .array(a)
        }
        return nil
    }
}
