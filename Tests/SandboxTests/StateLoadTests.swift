import Foundation
import Synchronization
import Testing

@testable import Sandbox

/// What the dumpers and the emulator clients of the load test share.
final class LoadProgress: Sendable {
  let stop = Atomic<Bool>(false)
  let started = Atomic<Int>(0)
  /// Emulator requests answered so far, and those answered while a dump was in flight.
  let served = Atomic<Int>(0)
  let servedDuringDumps = Atomic<Int>(0)
}

@Suite struct StateUnderLoadTests {
  static func playlists(_ n: Int, channel: String) -> JSON {
    var o: [String: JSON] = [:]
    for i in 0..<n {
      let id = String(format: "PLload%06d", i)
      o[id] = [
        "kind": "youtube#playlist", "id": .string(id),
        "snippet": [
          "title": .string("load \(i)"), "channelId": .string(channel), "description": .string(String(repeating: "d", count: 300)),
        ],
        "status": ["privacyStatus": "public"],
      ]
    }
    return .object(o)
  }

  /// A request to one emulator never waits for another's lock: with n8n's shard held,
  /// YouTube and Vault still answer (the single world lock of before would hang them).
  @Test func oneEmulatorsLockDoesNotHoldUpAnother() async throws {
    try await withSandbox { sb in
      let token = try await sb.accessToken()
      let holding = DispatchSemaphore(value: 0)
      let release = DispatchSemaphore(value: 0)
      let core = sb.core
      Thread {
        core.state.n8n.write { _ in
          holding.signal()
          release.wait()
        }
      }.start()
      holding.wait()
      let yt = try await sb.yt("GET", "/channels?part=snippet&mine=true", token: token)
      let vault = try await sb.vault("GET", "/sys/policies/acl/default")
      let quota = try await sb.call("GET", "/_sandbox/quota")
      let dump = try await sb.call("GET", "/_sandbox/state/youtube/channels/\(techDaily)/snippet/title")
      #expect(yt.status == 200)
      #expect(vault.status == 200)
      #expect(quota.status == 200)
      #expect(dump.json == "Tech Daily")
      release.signal()
      let n8n = try await sb.n8n("GET", "/workflows")
      #expect(n8n.status == 200)
    }
  }

  /// Thousands of playlists; two clients dump the whole state over and over while YouTube
  /// and n8n clients work. Every emulator request is answered, some while a dump is in
  /// flight, and the state file written in the background holds the world after a restart.
  @Test func largeStateDumpsDoNotStopTheEmulators() async throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sandbox-load-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("state.sqlite").path
    let count = 3000
    var before: JSON?
    try await withSandbox(
      { o in o.statePath = path },
      { sb in
        // A merge patch: the seeded playlists stay.
        let seeded = try await sb.call("PATCH", "/_sandbox/state/youtube/playlists", json: Self.playlists(count, channel: techDaily))
        #expect(seeded.status == 200)
        let base = seeded.json?.object?.count ?? 0
        #expect(base > count)
        let limit = try await sb.call("PUT", "/_sandbox/quota", json: ["youtube": ["limit": 1_000_000]])
        #expect(limit.status == 200)
        let token = try await sb.accessToken()

        let progress = LoadProgress()
        let dumpers = (0..<2).map { _ in
          Task { () -> (Int, Bool) in
            var dumps = 0
            var complete = true
            progress.started.wrappingAdd(1, ordering: .sequentiallyConsistent)
            while !progress.stop.load(ordering: .sequentiallyConsistent) {
              let startServed = progress.served.load(ordering: .sequentiallyConsistent)
              let r = try await sb.call("GET", "/_sandbox/state")
              let during = progress.served.load(ordering: .sequentiallyConsistent) - startServed
              progress.servedDuringDumps.wrappingAdd(during, ordering: .sequentiallyConsistent)
              complete = complete && r.status == 200 && r.complete && (r.json?["youtube"]?["playlists"]?.object?.count ?? 0) >= count
              dumps += 1
            }
            return (dumps, complete)
          }
        }
        #expect(await eventually { progress.started.load(ordering: .sequentiallyConsistent) == 2 })
        try await Task.sleep(for: .milliseconds(50))
        var ok = 0
        for i in 0..<40 {
          let id = String(format: "PLload%06d", i * 71 % count)
          let y = try await sb.yt("GET", "/playlists?part=snippet&id=\(id)", token: token)
          if y.status == 200 && y.json?["items"]?.array?.first?["id"]?.string == id { ok += 1 }
          progress.served.wrappingAdd(1, ordering: .sequentiallyConsistent)
          let n = try await sb.n8n("GET", "/workflows")
          if n.status == 200 && n.json?["data"]?.array != nil { ok += 1 }
          progress.served.wrappingAdd(1, ordering: .sequentiallyConsistent)
          if i % 10 == 0 {
            let p = try await sb.yt(
              "POST", "/playlists?part=snippet", token: token, json: ["snippet": ["title": .string("made under load \(i)")]])
            if p.status == 200 { ok += 1 }
            progress.served.wrappingAdd(1, ordering: .sequentiallyConsistent)
          }
        }
        progress.stop.store(true, ordering: .sequentiallyConsistent)
        var dumps = 0
        for d in dumpers {
          let (n, complete) = try await d.value
          dumps += n
          #expect(complete, "every dump is a whole world")
        }
        #expect(ok == 84, "every YouTube and n8n request answered correctly while the state was dumped")
        #expect(dumps >= 2)
        #expect(
          progress.servedDuringDumps.load(ordering: .sequentiallyConsistent) > 0, "emulator requests are answered while a dump is in flight"
        )
        // None of the connections was cut by the sandbox's own limits (a late head, a late body, the cap).
        let cut = sb.connectionsClosedByLimits
        #expect(cut.overCap == 0 && cut.headerTimeout == 0 && cut.bodyTimeout == 0, "\(cut)")

        // The background writer saves without a shutdown.
        let store = try StateStore(path: path)
        #expect(
          await eventually(60) { ((try? store.load())?.youtube.playlists.count ?? 0) == base + 4 },
          "the state file catches up in the background")
        before = try await sb.call("GET", "/_sandbox/state").json
        #expect(before?["youtube"]?["playlists"]?.object?.count == base + 4)
      })
    try await withSandbox(
      { o in o.statePath = path },
      { sb in
        let after = try await sb.call("GET", "/_sandbox/state").json
        #expect(after != nil)
        #expect(after == before, "the state file holds the world as it was at the stop")
        #expect(after?["youtube"]?["playlists"]?["PLload002999"]?["snippet"]?["title"] == "load 2999")
      })
  }

  /// Admin edits mean what they meant when the world was one value converted as a whole
  /// (statuses recorded from that implementation): in place below a map of resources, one
  /// field converted, or the whole shard for removals and nulls.
  @Test func adminEditsKeepTheirMeaning() async throws {
    try await withSandbox { sb in
      let cases: [(String, String, JSON?, Int)] = [
        (
          "PUT", "youtube/playlists/PLx",
          ["kind": "youtube#playlist", "id": "PLx", "snippet": ["title": "t1", "channelId": .string(techDaily)], "f": 2.5], 200
        ),
        ("PATCH", "youtube/playlists/PLx", ["snippet": ["title": "t2"], "f": .null], 200),
        ("PUT", "youtube/playlists/PLx/snippet/title", "t3", 200),
        ("PUT", "youtube/playlists/PLx/snippet/new", "n", 200),
        ("PUT", "youtube/playlists/PLmissing/snippet/title", "x", 404),
        ("PUT", "youtube/playlists/PLx/tags/0", "x", 404),
        ("DELETE", "youtube/playlists/PLx", nil, 204),
        ("DELETE", "youtube/playlists/PLx", nil, 404),
        ("PUT", "youtube/quotaUsed", 7, 200),
        ("PUT", "youtube/quotaUsed", "lots", 400),
        ("PUT", "youtube/quotaUsed", .null, 400),
        ("PUT", "youtube/channels", "x", 400),
        ("PUT", "youtube/channels", .null, 400),
        ("DELETE", "youtube", nil, 400),
        ("DELETE", "youtube/quotaUsed", nil, 400),
        ("PUT", "youtube/foo", 1, 404),
        ("PUT", "cloudflare/scripts", .null, 200),
        ("PUT", "cloudflare/recent", "x", 400),
        ("DELETE", "cloudflare/buckets", nil, 204),
        ("DELETE", "vault/auditDevices", nil, 404),
        ("GET", "vault/auditDevices", nil, 404),
        ("PUT", "vault/auditDevices", ["a/": ["type": "file"]], 200),
        ("PUT", "vault/kv/x", ["bad": 1], 400),
        ("PUT", "youtube/accessTokens/zz", ["channelId": "UCx"], 400),
        ("PUT", "serial", 41, 200),
        ("DELETE", "credentials", nil, 400),
        ("DELETE", "serial", nil, 400),
        ("PUT", "nothing", 1, 404),
        ("DELETE", "nothing", nil, 404),
        ("GET", "youtube/quota/costs/videos.insert", nil, 200),
      ]
      for (method, path, body, status) in cases {
        let r = try await sb.call(method, "/_sandbox/state/" + path, json: body)
        #expect(r.status == status, "\(method) \(path): \(r.text)")
      }
      #expect(try await sb.call("GET", "/_sandbox/state/youtube/playlists/PLx").status == 404)
      #expect(sb.youtubeQuotaUsed == 7)
      #expect(try await sb.call("GET", "/_sandbox/state/serial").json == 41)
      #expect(try await sb.call("GET", "/_sandbox/state/cloudflare/scripts").json == [:])
      #expect(try await sb.call("GET", "/_sandbox/state/vault/auditDevices").json?["a/"]?["type"] == "file")
      // The credentials are read by every request: a changed key takes effect at once.
      #expect(try await sb.call("PUT", "/_sandbox/state/credentials/n8nAPIKey", json: "k2").json == "k2")
      #expect(try await sb.n8n("GET", "/workflows").status == 401)
      #expect(try await sb.call("GET", "/api/v1/workflows", headers: ["X-N8N-API-KEY": "k2"]).status == 200)
      // A merge patch below one resource keeps the rest of it; a field-wide PUT replaces.
      _ = try await sb.call(
        "PUT", "/_sandbox/state/youtube/playlists/PLy", json: ["id": "PLy", "snippet": ["title": "a", "description": "d"]])
      let patched = try await sb.call("PATCH", "/_sandbox/state/youtube/playlists/PLy", json: ["snippet": ["title": "b"]])
      #expect(patched.json?["snippet"] == ["title": "b", "description": "d"])
    }
  }

  /// The last changes before a stop are written by the stop, not lost to the coalescing delay.
  @Test func stopWritesWhatThePendingSaveWouldHave() async throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sandbox-flush-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("state.sqlite").path
    try await withSandbox(
      { o in
        o.statePath = path
        o.saveInterval = .seconds(3600)
      },
      { sb in
        let r = try await sb.call("PUT", "/_sandbox/state/vault/policies/late", json: "path \"x\" { capabilities = [\"read\"] }")
        #expect(r.status == 200)
        let store = try StateStore(path: path)
        #expect(try store.load()?.vault.policies["late"] == nil, "not yet written: the save waits an hour")
      })
    let store = try StateStore(path: path)
    #expect(try store.load()?.vault.policies["late"] != nil, "written by the stop")
  }
}
