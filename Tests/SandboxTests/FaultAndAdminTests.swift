import Foundation
import Testing

@testable import Sandbox

@Suite struct FaultSpecTests {
  @Test func parsesEveryAction() throws {
    let rules = try FaultSpec.parse(
      "youtube:/youtube/v3/channels=latency:200ms;cloudflare:*=error:0.5:503:backendError;n8n=reset;vault:PUT /v1/sys/*=throttle:1:12,latency:10ms-1s;*=quota:0.25"
    )
    #expect(rules.count == 5)
    #expect(
      rules[0] == FaultRule(emulator: .youtube, method: nil, pathGlob: "/youtube/v3/channels", actions: [.latency(minMs: 200, maxMs: 200)]))
    #expect(rules[1].actions == [.error(rate: 0.5, status: 503, reason: "backendError")])
    #expect(rules[2] == FaultRule(emulator: .n8n, method: nil, pathGlob: "*", actions: [.reset(rate: 1)]))
    #expect(rules[3].method == "PUT")
    #expect(rules[3].actions == [.throttle(rate: 1, retryAfter: 12), .latency(minMs: 10, maxMs: 1000)])
    #expect(rules[4].emulator == nil)
    #expect(rules[4].actions == [.quota(rate: 0.25)])
  }

  @Test(arguments: [
    "youtube", "mars:*=reset", "youtube=", "youtube=latency", "youtube=latency:fast", "youtube=error:2",
    "youtube=error:0.5:200", "youtube=explode", "youtube:channels=reset", "youtube=latency:2s-1s",
  ])
  func rejectsBadSpecs(_ spec: String) {
    #expect(throws: FaultSpecError.self) { try FaultSpec.parse(spec) }
  }

  @Test func globMatching() {
    #expect(FaultRule.glob("*", "/anything"))
    #expect(FaultRule.glob("/api/v1/workflows*", "/api/v1/workflows/abc/activate"))
    #expect(!FaultRule.glob("/api/v1/tags", "/api/v1/tags/1"))
    #expect(FaultRule.glob("/client/v4/zones/*/entrypoint", "/client/v4/zones/z/rulesets/phases/p/entrypoint"))
  }
}

@Suite struct FaultInjectionTests {
  @Test func fixedLatency() async throws {
    try await withSandbox(
      { o in o.faults = "vault:/v1/sys/health=latency:300ms" },
      { sb in
        let t0 = Date()
        let r = try await sb.call("GET", "/v1/sys/health")
        #expect(r.status == 200)
        #expect(Date().timeIntervalSince(t0) >= 0.3)
        // Other routes are not delayed (asked of the engine: wall time on a loaded machine is no proof).
        let other = SandboxRequest(method: "GET", path: "/v1/sys/policies/acl/default", rawQuery: nil, headers: [:], body: [])
        #expect(sb.core.faults.withLock { $0.decide(.vault, other) }.delayMs == 0)
        let same = SandboxRequest(method: "GET", path: "/v1/sys/health", rawQuery: nil, headers: [:], body: [])
        #expect(sb.core.faults.withLock { $0.decide(.vault, same) }.delayMs == 300)
      })
  }

  @Test func randomLatencyStaysInItsRangeAndIsSeeded() async throws {
    var a = FaultEngine()
    var b = FaultEngine()
    let rules = try FaultSpec.parse("n8n=latency:100ms-300ms")
    a.set(rules, seed: 5)
    b.set(rules, seed: 5)
    let r = SandboxRequest(method: "GET", path: "/api/v1/workflows", rawQuery: nil, headers: [:], body: [])
    let da = (0..<50).map { _ in a.decide(.n8n, r).delayMs }
    let db = (0..<50).map { _ in b.decide(.n8n, r).delayMs }
    #expect(da == db)
    #expect(da.allSatisfy { (100...300).contains($0) })
    #expect(Set(da).count > 10, "the delays vary")
    #expect(a.decide(.vault, r).delayMs == 0, "other emulators are not delayed")
    try await withSandbox(
      { o in o.faults = "n8n=latency:150ms-200ms" },
      { sb in
        let t0 = Date()
        _ = try await sb.n8n("GET", "/workflows")
        #expect(Date().timeIntervalSince(t0) >= 0.15)
      })
  }

  @Test func errorRateIsDeterministicForASeed() async throws {
    func run(seed: UInt64) async throws -> [Int] {
      var statuses: [Int] = []
      try await withSandbox(
        { o in
          o.faults = "n8n:/api/v1/workflows=error:0.5:503:backendError"
          o.faultSeed = seed
        },
        { sb in
          for _ in 0..<16 { statuses.append(try await sb.n8n("GET", "/workflows").status) }
          let tags = try await sb.n8n("GET", "/tags")
          #expect(tags.status == 200, "a route without a rule is untouched")
        })
      return statuses
    }
    let a = try await run(seed: 42)
    let b = try await run(seed: 42)
    #expect(a == b)
    #expect(a.contains(503) && a.contains(200))
    #expect(Set(a) == [200, 503])
  }

  @Test func injectedErrorsUseEachAPIsErrorShape() async throws {
    try await withSandbox(
      { o in
        o.faults =
          "youtube=error:1:503:backendError;n8n=error:1:500;cloudflare=error:1:502;vault=error:1:503;oauth=error:1:500:internal_failure"
      },
      { sb in
        let token = "x"
        let y = try await sb.yt("GET", "/channels?part=id&mine=true", token: token)
        #expect(y.status == 503)
        #expect(googleReason(y) == "backendError")
        #expect(y.json?["error"]?["code"] == 503)
        #expect(sb.youtubeQuotaUsed == 1, "a failed YouTube request still costs a unit")
        let n = try await sb.n8n("GET", "/workflows")
        #expect(n.status == 500)
        #expect(n.json?["message"]?.string != nil)
        let c = try await sb.cf("GET", "/zones")
        #expect(c.status == 502)
        #expect(c.json?["success"] == false)
        #expect(c.json?["result"] == .null)
        let v = try await sb.vault("GET", "/sys/policies/acl/default")
        #expect(v.status == 503)
        #expect(v.json?["errors"]?.array?.count == 1)
        let o = try await sb.form("/token", [("grant_type", "refresh_token")])
        #expect(o.status == 500)
        #expect(o.json?["error"] == "internal_failure")
      })
  }

  @Test func youtubeRateLimitAs403() async throws {
    try await withSandbox(
      { o in
        o.faults =
          "youtube:/youtube/v3/channels=error:1:403:rateLimitExceeded;youtube:/youtube/v3/playlists=error:1:403:userRateLimitExceeded"
      },
      { sb in
        let token = try await sb.accessToken()
        let a = try await sb.yt("GET", "/channels?part=id&mine=true", token: token)
        #expect(a.status == 403)
        #expect(googleReason(a) == "rateLimitExceeded")
        #expect(a.json?["error"]?["errors"]?.array?.first?["domain"] == "youtube.quota")
        let b = try await sb.yt("GET", "/playlists?part=id&mine=true", token: token)
        #expect(googleReason(b) == "userRateLimitExceeded")
        #expect(b.json?["error"]?["errors"]?.array?.first?["domain"] == "usageLimits")
      })
  }

  @Test func throttleAnswers429WithRetryAfter() async throws {
    try await withSandbox(
      { o in o.faults = "n8n=throttle:1:17;youtube=429:1:5" },
      { sb in
        let r = try await sb.n8n("GET", "/workflows")
        #expect(r.status == 429)
        #expect(r.headers["retry-after"] == "17")
        let y = try await sb.yt("GET", "/channels?part=id&mine=true", token: "x")
        #expect(y.status == 429)
        #expect(y.headers["retry-after"] == "5")
        #expect(googleReason(y) == "rateLimitExceeded")
      })
  }

  @Test func quotaFaultExhaustsYouTube() async throws {
    try await withSandbox(
      { o in o.faults = "youtube:/youtube/v3/playlists=quota" },
      { sb in
        let token = try await sb.accessToken()
        let r = try await sb.yt("GET", "/playlists?part=id&mine=true", token: token)
        #expect(r.status == 403)
        #expect(googleReason(r) == "quotaExceeded")
        #expect(r.json?["error"]?["errors"]?.array?.first?["domain"] == "youtube.quota")
        let other = try await sb.yt("GET", "/channels?part=id&mine=true", token: token)
        #expect(other.status == 200)
      })
  }

  @Test func connectionResetMidResponseAfterExecuting() async throws {
    try await withSandbox(
      { o in o.faults = "n8n:POST /api/v1/workflows=reset" },
      { sb in
        let cut = try await sb.n8n("POST", "/workflows", json: workflowBody("half"))
        #expect(cut.status == 200)
        #expect(!cut.complete, "fewer body bytes than Content-Length: the connection was dropped")
        let announced = Int(cut.headers["content-length"] ?? "") ?? 0
        #expect(cut.body.count < announced)
        #expect(cut.json == nil)
        // The request was executed before the cut, as a real server may do.
        let list = try await sb.n8n("GET", "/workflows?name=half")
        #expect(list.json?["data"]?.array?.count == 1)
      })
  }

  @Test func resetOnAnEmptyBodyStillCutsTheConnection() async throws {
    try await withSandbox(
      { o in o.faults = "vault:DELETE *=reset" },
      { sb in
        // A 204 has no body to cut: the connection is reset before the answer, so no
        // response arrives at all (the request was executed all the same).
        _ = try await sb.vault("PUT", "/sys/policies/acl/doomed", json: ["policy": "path \"x\" {}"])
        await #expect(throws: RawHTTPError.self) { _ = try await sb.vault("DELETE", "/sys/policies/acl/doomed") }
        #expect(try await sb.vault("GET", "/sys/policies/acl/doomed").status == 404)
        #expect(try await sb.vault("GET", "/sys/policies/acl/default").status == 200)
      })
  }

  @Test func aBusyPortIsAnErrorNotACrash() async throws {
    try await withSandbox { sb in
      var o = SandboxOptions()
      o.port = sb.port
      var failed = false
      do {
        let second = try await SandboxServer.start(o)
        await second.stop()
      } catch is SandboxError {
        failed = true
      }
      #expect(failed, "a second sandbox cannot take a port in use")
      let health = try await sb.call("GET", "/v1/sys/health")
      #expect(health.status == 200)
    }
  }

  @Test func faultsChangeAtRunTimeThroughTheAdminAPI() async throws {
    try await withSandbox { sb in
      #expect(try await sb.n8n("GET", "/workflows").status == 200)
      let set = try await sb.call("PUT", "/_sandbox/faults", json: ["spec": "n8n=error:1:502:boom", "seed": 7])
      #expect(set.status == 200)
      #expect(try await sb.n8n("GET", "/workflows").status == 502)
      let listed = try await sb.call("GET", "/_sandbox/faults")
      #expect(listed.json?["rules"]?.array?.count == 1)
      let bad = try await sb.call("PUT", "/_sandbox/faults", json: ["spec": "n8n=explode"])
      #expect(bad.status == 400)
      #expect(bad.json?["error"]?.string?.contains("unknown fault") == true)
      let clear = try await sb.call("DELETE", "/_sandbox/faults")
      #expect(clear.status == 204)
      #expect(try await sb.n8n("GET", "/workflows").status == 200)
    }
  }
}

@Suite struct SeedAdminStateTests {
  @Test func seedCreatesChannelsWithDifferentBranding() async throws {
    try await withSandbox { sb in
      #expect(sb.seed.channels.map(\.name) == ["finance-focus", "science-simplified", "tech-daily"])
      let td = try #require(sb.seed.channels.first { $0.name == "tech-daily" })
      #expect(td.refreshToken == "1//sandbox-refresh-tech-daily")
      #expect(td.credentials == "youtube-tech-daily")
      #expect(td.channelId == techDaily)
      let token = try await sb.accessToken()
      let r = try await sb.yt("GET", "/channels?part=brandingSettings&id=\(techDaily)", token: token)
      let ch = try #require(r.json?["items"]?.array?.first?["brandingSettings"]?["channel"])
      #expect(ch["title"] == "Tech Daily")
      #expect(ch["description"]?.string?.contains("ten minutes") == false, "the description differs from the repository")
      #expect(ch["keywords"] == "tech \"ai news\" gadgets software", "the last keyword is missing")
      #expect(ch["unsubscribedTrailer"] == nil)
      #expect(sb.seed.zones.sorted() == ["ytempire-video.com", "ytempire.com"])
      // One zone holds a hand-made rule; the other has never had its phase written.
      let z = try await sb.cf("GET", "/zones?name=ytempire-video.com")
      let zid = try #require(z.json?["result"]?.array?.first?["id"]?.string)
      let e = try await sb.cf("GET", "/zones/\(zid)/rulesets/phases/http_request_cache_settings/entrypoint")
      #expect(e.status == 200)
      #expect(e.json?["result"]?["rules"]?.array?.first?["ref"] == "manual-fonts")
      let meta = try await sb.vault("GET", "/secret/metadata/ytempire/youtube")
      #expect(meta.json?["data"]?["current_version"] == 1)
    }
  }

  @Test func adminDriftEditCallCountsAndQuota() async throws {
    try await withSandbox { sb in
      let token = try await sb.accessToken()
      let patch = try await sb.call(
        "PATCH", "/_sandbox/state/youtube/channels/\(techDaily)",
        json: ["brandingSettings": ["channel": ["description": "Edited in YouTube Studio"]]])
      #expect(patch.status == 200, "\(patch.text)")
      let r = try await sb.yt("GET", "/channels?part=brandingSettings&id=\(techDaily)", token: token)
      #expect(r.json?["items"]?.array?.first?["brandingSettings"]?["channel"]?["description"] == "Edited in YouTube Studio")
      #expect(r.json?["items"]?.array?.first?["brandingSettings"]?["channel"]?["title"] == "Tech Daily", "a merge patch keeps the rest")
      _ = try await sb.yt("GET", "/channels?part=id&mine=true", token: token)
      let calls = try await sb.call("GET", "/_sandbox/calls")
      #expect(calls.json?["calls"]?["youtube GET /youtube/v3/channels"] == 2)
      #expect(calls.json?["calls"]?["oauth POST /token"] == 1)
      #expect(calls.json?["byEmulator"]?["youtube"] == 2)
      let quota = try await sb.call("GET", "/_sandbox/quota")
      #expect(quota.json?["youtube"]?["used"] == 2)
      #expect(quota.json?["youtube"]?["limit"] == 10000)
      let get = try await sb.call("GET", "/_sandbox/state/youtube/channels/\(techDaily)/snippet/title")
      #expect(get.json == "Tech Daily")
      let bad = try await sb.call("PUT", "/_sandbox/state/youtube/quotaUsed", json: "lots")
      #expect(bad.status == 400)
      let missing = try await sb.call("GET", "/_sandbox/state/nothing")
      #expect(missing.status == 404)
      let reset = try await sb.call("DELETE", "/_sandbox/calls")
      #expect(reset.status == 204)
      #expect(sb.callCounts.isEmpty)
    }
  }

  @Test func stateSurvivesARestartInSQLite() async throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sandbox-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let path = dir.appendingPathComponent("state.sqlite").path
    var playlistId = ""
    try await withSandbox(
      { o in o.statePath = path },
      { sb in
        let token = try await sb.accessToken()
        let r = try await sb.yt("POST", "/playlists?part=snippet", token: token, json: ["snippet": ["title": "kept"]])
        playlistId = try #require(r.json?["id"]?.string)
      })
    try await withSandbox(
      { o in o.statePath = path },
      { sb in
        let token = try await sb.accessToken()
        let r = try await sb.yt("GET", "/playlists?part=snippet&id=\(playlistId)", token: token)
        #expect(r.json?["items"]?.array?.first?["snippet"]?["title"] == "kept")
        #expect(sb.youtubeQuotaUsed == 51, "quota spent before the restart is remembered")
        #expect(sb.seed.channels.count == 3)
      })
  }

  @Test func writesACompleteReconcilerConfig() async throws {
    try await withSandbox { sb in
      let yaml = SandboxConfigWriter.render(
        baseURL: sb.baseURL, credentials: sb.credentials, channels: sb.seed.channels,
        sourceDir: examplesDir, stateDir: "/tmp/ytempire-sandbox")
      #expect(yaml.contains("apiVersion: ytempire.io/v1\nkind: ReconcilerConfig\n"))
      #expect(yaml.contains("  url: \"\(examplesDir)\""))
      #expect(yaml.contains("    endpoint: \"\(sb.baseURL)/youtube/v3\"\n    tokenEndpoint: \"\(sb.baseURL)/token\""))
      #expect(yaml.contains("    endpoint: \"\(sb.baseURL)/client/v4\"\n    token: {value: \"sandbox-cloudflare-token\"}"))
      #expect(yaml.contains("apiKey: {value: \"sandbox-n8n-api-key\"}"))
      #expect(yaml.contains("token: {value: \"hvs.sandbox-root-token\"}"))
      #expect(yaml.contains("  youtube-tech-daily: {value: \"1//sandbox-refresh-tech-daily\"}"))
      #expect(yaml.contains("stateDir: \"/tmp/ytempire-sandbox\""))
      #expect(yaml.contains("url: \"sqlite:///tmp/ytempire-sandbox/runtime.sqlite\""))
      for c in sb.seed.channels { #expect(yaml.contains("  \(c.credentials): {value: ")) }
    }
  }

  @Test func garbageNeverCrashesTheServer() async throws {
    try await withSandbox { sb in
      var rng = SplitMix64(seed: 99)
      let paths = [
        "/youtube/v3/channels?part=%ZZ", "/youtube/v3/playlists?part=snippet,,&maxResults=-1&pageToken=SBPzzzzzzzzzzzzzzzzzzzzzzzQ",
        "/token", "/api/v1/workflows/../../x", "/api/v1/workflows?limit=99999999999999999999999",
        "/client/v4/zones?page=-3&per_page=abc", "/v1/secret/data/", "/v1/secret/metadata?list=true",
        "/_sandbox/state/youtube/channels/0/1/2", "/_sandbox/clock", "/nowhere", "/v1/sys/policies/acl/%2F",
      ]
      let auth = [
        "Authorization": "Bearer \(sb.credentials.cloudflareToken)", "X-N8N-API-KEY": sb.credentials.n8nAPIKey,
        "X-Vault-Token": sb.credentials.vaultToken,
      ]
      for path in paths {
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
          let body = (0..<Int(rng.next() % 64)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
          let r = try await sb.call(method, path, headers: auth, raw: body)
          #expect((200...599).contains(r.status))
        }
      }
      // Deeply nested JSON: rejected or stored, never a crash.
      for depth in [400, 100_000] {
        let deep = Array(repeating: UInt8(ascii: "["), count: depth) + Array(repeating: UInt8(ascii: "]"), count: depth)
        let n = try await sb.n8n("POST", "/workflows", raw: deep)
        #expect(n.status == 400)
        let v = try await sb.call(
          "POST", "/v1/secret/data/deep", headers: auth,
          raw: Array("{\"data\":{\"x\":".utf8) + deep + Array("}}".utf8))
        #expect((200...599).contains(v.status))
      }
      #expect(try await sb.call("GET", "/_sandbox/state").status == 200)
      #expect(try await sb.call("GET", "/v1/sys/health").status == 200)
    }
  }
}
