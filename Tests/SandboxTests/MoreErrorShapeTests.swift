import EmpireModel
import Foundation
import Testing

@testable import Sandbox

/// The error answers not already pinned by the per-API suites.
@Suite struct MoreErrorShapeTests {
  @Test func youtubeRemainingErrors() async throws {
    try await withSandbox { sb in
      let token = try await sb.accessToken()
      let unknownResource = try await sb.yt("GET", "/subscriptions?part=id&mine=true", token: token)
      #expect(unknownResource.status == 404)
      #expect(googleReason(unknownResource) == "notFound")
      let videos = try await sb.yt("POST", "/videos?part=snippet", token: token, json: ["snippet": ["title": "v"]])
      #expect(videos.status == 501)
      #expect(googleReason(videos) == "notImplemented")
      let longTitle = String(repeating: "x", count: 151)
      let tooLong = try await sb.yt("POST", "/playlists?part=snippet", token: token, json: ["snippet": ["title": .string(longTitle)]])
      #expect(tooLong.status == 400)
      #expect(googleReason(tooLong) == "invalidPlaylistSnippet")
      let keywords = String(repeating: "k ", count: 260)
      let kw = try await sb.yt(
        "PUT", "/channels?part=brandingSettings", token: token,
        json: ["id": .string(techDaily), "brandingSettings": ["channel": ["title": "T", "keywords": .string(keywords)]]])
      #expect(kw.status == 400)
      #expect(googleReason(kw) == "invalidChannelKeywords")
      let snippetOnly = try await sb.yt("PUT", "/channels?part=snippet", token: token, json: ["id": .string(techDaily)])
      #expect(snippetOnly.status == 400)
      #expect(googleReason(snippetOnly) == "unexpectedPart")
      let noId = try await sb.yt("DELETE", "/playlists", token: token)
      #expect(noId.status == 400)
      #expect(googleReason(noId) == "required")
      let unknownChannel = try await sb.yt("GET", "/playlists?part=id&channelId=UCnothing", token: token)
      #expect(unknownChannel.status == 404)
      #expect(googleReason(unknownChannel) == "channelNotFound")
    }
  }

  @Test func n8nRemainingErrors() async throws {
    try await withSandbox { sb in
      let route = try await sb.n8n("GET", "/executions")
      #expect(route.status == 404)
      #expect(route.json?["message"]?.string != nil)
      let tagRO = try await sb.n8n("POST", "/tags", json: ["name": "a", "id": "x"])
      #expect(tagRO.json == ["message": "request/body/id is read-only"])
      let nodeBad = try await sb.n8n(
        "POST", "/workflows",
        json: [
          "name": "x", "nodes": [["name": "n", "typeVersion": 1, "position": [0, 0], "parameters": [:]]],
          "connections": [:], "settings": [:],
        ])
      #expect(nodeBad.json == ["message": "request/body/nodes/0 must have required property 'type'"])
      let active = try await sb.n8n("GET", "/workflows?active=maybe")
      #expect(active.status == 400)
    }
  }

  @Test func cloudflareAndVaultRemainingErrors() async throws {
    try await withSandbox { sb in
      let perPage = try await sb.cf("GET", "/zones?per_page=500")
      #expect(perPage.status == 400)
      #expect(perPage.json?["success"] == false)
      let z = try await sb.cf("GET", "/zones?name=ytempire.com")
      let zid = try #require(z.json?["result"]?.array?.first?["id"]?.string)
      let phase = try await sb.cf("GET", "/zones/\(zid)/rulesets/phases/not_a_phase/entrypoint")
      #expect(phase.status == 400)
      let notObject = try await sb.cf("PUT", "/zones/\(zid)/rulesets/phases/http_request_cache_settings/entrypoint", json: ["rules"])
      #expect(notObject.status == 400)
      let zone = try await sb.cf("GET", "/zones/\(zid)")
      #expect(zone.json?["result"]?["name"] == "ytempire.com")

      let post = try await sb.vault("PATCH", "/sys/policies/acl/x", json: ["policy": "x"])
      #expect(post.status == 405)
      #expect(post.json?["errors"]?.array?.count == 1)
      let hcl = try await sb.vault("PUT", "/sys/policies/acl/x", json: ["policy": "path \"a\" {"])
      #expect(hcl.status == 400)
      let notJSON = try await sb.call(
        "PUT", "/v1/sys/policies/acl/x", headers: ["X-Vault-Token": sb.credentials.vaultToken], raw: Array("policy".utf8))
      #expect(notJSON.status == 400)
    }
  }

  @Test func cloudflareDefaultLimitIs1200PerFiveMinutes() async throws {
    let start = Date(timeIntervalSince1970: 1_795_679_400)
    try await withSandbox(
      { o in o.clock = SandboxClock { start } },
      { sb in
        let r = SandboxRequest(
          method: "GET", path: "/client/v4/zones", rawQuery: nil,
          headers: ["authorization": "Bearer \(sb.credentials.cloudflareToken)"], body: [])
        for i in 0..<1200 {
          let ok = await sb.core.respond(r)
          if ok.status != 200 {
            Issue.record("request \(i + 1) answered \(ok.status)")
            return
          }
        }
        // Over HTTP, the 1201st request is refused and starts the block.
        let limited = try await sb.cf("GET", "/zones")
        #expect(limited.status == 429)
        #expect(limited.headers["retry-after"] == "300")
        let q = try await sb.call("GET", "/_sandbox/quota")
        #expect(q.json?["cloudflare"]?["blocked"] == true)
        let unblock = try await sb.call("PUT", "/_sandbox/quota", json: ["cloudflare": ["unblock": true]])
        #expect(unblock.status == 200)
        #expect(try await sb.cf("GET", "/zones").status == 200)
      })
  }

  @Test func adminClockAndCredentials() async throws {
    try await withSandbox { sb in
      let token = try await sb.accessToken()
      let adv = try await sb.call("POST", "/_sandbox/clock", json: ["advanceSeconds": 4000])
      #expect(adv.status == 200)
      #expect(try await sb.yt("GET", "/channels?part=id&mine=true", token: token).status == 401, "the token expired on the sandbox clock")
      let bad = try await sb.call("POST", "/_sandbox/clock", json: ["advanceSeconds": -5])
      #expect(bad.status == 400)
      let creds = try await sb.call("GET", "/_sandbox/credentials")
      #expect(creds.json?["n8nAPIKey"] == "sandbox-n8n-api-key")
      #expect(creds.json?["channels"]?.array?.count == 3)
      let unknown = try await sb.call("GET", "/_sandbox/nothing")
      #expect(unknown.status == 404)
    }
  }
}

@Suite struct SeedingEdgeTests {
  @Test func everySeededChannelDiffersFromTheRepository() async throws {
    let resources = try Seeder.load(examplesDir)
    let channels = resources.compactMap { r in r.channel.map { (r.name, $0) } }
    #expect(channels.count == 3)
    try await withSandbox { sb in
      for (name, spec) in channels {
        let token = try await sb.accessToken(name)
        let r = try await sb.yt("GET", "/channels?part=brandingSettings&mine=true", token: token)
        let b = try #require(r.json?["items"]?.array?.first?["brandingSettings"]?["channel"])
        #expect(b["title"]?.string == spec.branding.title)
        #expect(b["description"]?.string != spec.branding.description, "\(name): description must differ")
        if let kw = spec.branding.keywords {
          #expect(b["keywords"]?.string == YouTubeKeywords.join(Array(kw.dropLast())), "\(name): one keyword fewer")
        }
      }
    }
  }

  @Test func anInvalidOrMissingSeedDirectoryIsAnError() async throws {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sandbox-seed-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    try """
    apiVersion: ytempire.io/v1
    kind: Channel
    metadata: {name: broken}
    spec:
      youtube: {channelId: nope, credentials: x}
      branding: {titel: X}
    """.write(to: dir.appendingPathComponent("c.yaml"), atomically: true, encoding: .utf8)
    var o = SandboxOptions()
    o.seedFrom = dir.path
    do {
      let sb = try await SandboxServer.start(o)
      await sb.stop()
      Issue.record("an invalid repository must not seed")
    } catch let e as SeedError {
      #expect(e.description.contains("does not validate"))
    }
    o.seedFrom = dir.path + "/missing"
    await #expect(throws: SeedError.self) { try await SandboxServer.start(o).stop() }
    var s = SandboxOptions()
    s.statePath = "/proc/no/such/dir/state.sqlite"
    await #expect(throws: SandboxError.self) { try await SandboxServer.start(s).stop() }
  }
}
