import Foundation
import TestSupport
import Testing
import YAMLKit

/// plan → apply → plan → status through the built binary against the sandbox and a real git
/// repository: create, change one field, prune, drift.
@Suite("end to end: converge")
struct ConvergeTests {
  @Test("from an empty state directory: apply converges, plan says no changes, every Channel is Ready, the status branch has the ids")
  func createFromEmpty() async throws {
    try await Empire.with { e in
      let head = try e.repo.head()

      let first = try await e.run("plan", "--detailed-exitcode")
      #expect(first.status == 2, "\(first)")
      #expect(first.stdout.contains("Plan: "))

      let applied = try await e.apply()
      #expect(applied.stdout.contains("Apply complete"), "\(applied)")
      #expect(applied.stdout.contains("0 failed, 0 deferred"), "\(applied)")

      let again = try await e.run("plan", "--detailed-exitcode")
      #expect(again.status == 0, "\(again)")
      #expect(again.stdout.contains("No changes"), "\(again)")

      let status = try await e.run("status", "--output", "json")
      #expect(status.status == 0, "\(status)")
      let obj = try E2E.object(status.stdout)
      #expect(obj["lastAppliedRevision"] as? String == "main@sha1:\(head)")
      let resources = try #require(obj["resources"] as? [[String: Any]])
      let channels = resources.filter { (($0["id"] as? [String: Any])?["kind"] as? String) == "Channel" }
      #expect(channels.count == 3)
      for c in channels {
        let conds = c["conditions"] as? [[String: Any]] ?? []
        let ready = conds.first { $0["type"] as? String == "Ready" }
        #expect(ready?["status"] as? String == "True", "\(c)")
      }

      // The status branch of the source repository itself.
      let file = try e.statusFile("status/channel/tech-daily.yaml")
      #expect(file["kind"]?.scalarText == "ChannelStatus")
      #expect(file[path: "status", "lastAppliedRevision"]?.scalarText == "main@sha1:\(head)")
      #expect(file.condition("Ready")?.status == "True")
      let ext = try #require(file[path: "status", "external"])
      #expect(ext["youtubeChannelId"]?.scalarText == e.channelId("tech-daily"))
      // DESIGN A7 names the map `playlists`; the status writer names it after the external key prefix `playlist`.
      let lists = try #require(ext["playlists"] ?? ext["playlist"], "external: \(ext)")
      let sandboxLists = try await e.playlists()
      for (name, title) in [("ai-explained", "AI Explained"), ("gadget-reviews", "Gadget Reviews"), ("shorts-backlog", "Shorts backlog")] {
        let id = try #require(lists[name]?.scalarText, "\(name) in \(lists)")
        #expect(id.hasPrefix("PL"))
        #expect(sandboxLists[id]?.title == title)
        #expect(sandboxLists[id]?.channel == e.channelId("tech-daily"))
      }
      #expect(try await e.duplicatePlaylistTitles() == [])
      let summary = try e.statusFile("status/summary.yaml")
      #expect(summary["kind"]?.scalarText == "Summary")
    }
  }

  @Test("DESIGN A7: the status file's external ids are under `playlists`")
  func statusExternalPlaylistsKey() async throws {
    try await Empire.with { e in
      try await e.apply()
      let file = try e.statusFile("status/channel/tech-daily.yaml")
      #expect(file[path: "status", "external", "playlists"] != nil)
    }
  }

  @Test("one changed field: exactly one channels.update planned and exactly one PUT /channels made; only that channel observed")
  func changeOneField() async throws {
    try await Empire.with { e in
      try await e.apply()
      let text = try e.channelFile("science-simplified")
        .replacingOccurrences(
          of: "description: Big ideas from physics, space and biology in ten-minute explainers.",
          with: "description: Big ideas from physics, space and biology, explained in ten minutes.")
      try e.commit("New description for science-simplified", ["channels/science-simplified.yaml": text])

      let plan = try await e.planJSON()
      #expect(PlanJSON.callNames(plan, driver: "youtube") == ["youtube.channels.update"], "\(PlanJSON.actions(plan))")
      let yt = PlanJSON.actions(plan).filter { ($0["action"] as? [String: Any])?["driver"] as? String == "youtube" }
      #expect(yt.map(PlanJSON.resource) == ["Channel/science-simplified"])
      let changes = (yt.first?["action"] as? [String: Any])?["changes"] as? [[String: Any]] ?? []
      #expect(changes.map { $0["path"] as? String } == ["branding.description"])
      // Of what YouTube's quota prices, only what changed in git is observed again: the one
      // channel. What observing costs no unit (n8n, Cloudflare, Vault, the config store) is observed too.
      let observation = try #require(plan["observation"] as? [String: Any])
      let observedNow = observation["observedNow"] as? Int ?? -1
      #expect(observedNow > 2, "\(observation)")
      let quotaCalls = (observation["calls"] as? [[String: Any]] ?? []).filter { ($0["units"] as? Int ?? 0) > 0 }
      #expect(!quotaCalls.isEmpty && quotaCalls.allSatisfy { $0["channel"] as? String == "science-simplified" }, "\(quotaCalls)")
      let listCalls = (observation["calls"] as? [[String: Any]] ?? []).filter { $0["service"] as? String == "youtube" }
      #expect(listCalls.allSatisfy { $0["channel"] as? String == nil || $0["channel"] as? String == "science-simplified" }, "\(listCalls)")

      let before = e.sandbox.callCounts
      let r = try await e.apply()
      #expect(r.stdout.contains("1 succeeded") || r.stdout.contains("succeeded, 0 failed"), "\(r)")
      let after = e.sandbox.callCounts
      #expect((after[Empire.channelsUpdate] ?? 0) - (before[Empire.channelsUpdate] ?? 0) == 1)
      for k in [Empire.playlistsInsert, Empire.playlistsDelete, Empire.playlistsUpdate] {
        #expect((after[k] ?? 0) == (before[k] ?? 0), "\(k)")
      }
      #expect(
        try await e.description(ofChannel: "science-simplified") == "Big ideas from physics, space and biology, explained in ten minutes.")
      #expect(try await e.run("plan", "--detailed-exitcode").status == 0)
    }
  }

  @Test("prune: one owned playlist deleted, a hand-made one never; prune \"false\" keeps a removed playlist and says kept")
  func prune() async throws {
    try await Empire.with { e in
      try await e.apply()

      // A playlist made by hand in YouTube (through the API as the channel), in tech-daily.
      let tech = try #require(e.sandbox.seed.channels.first { $0.name == "tech-daily" })
      let handMade = try await e.youtubeInsertPlaylist(refreshToken: tech.refreshToken, title: "Behind the scenes (hand-made)")
      let lists = try await e.playlists()
      let gadget = try #require(lists.first { $0.value.title == "Gadget Reviews" }?.key)
      let moneyBasics = try #require(lists.first { $0.value.title == "Money Basics" }?.key)

      var techText = try e.channelFile("tech-daily")
      techText = techText.replacingOccurrences(
        of: """
              - name: gadget-reviews
                title: Gadget Reviews
                privacy: public
                tags: [gadgets, reviews]

          """, with: "")
      var financeText = try e.channelFile("finance-focus")
      financeText = financeText.replacingOccurrences(
        of: """
              - name: money-basics
                title: Money Basics
                privacy: unlisted       # linked from the channel's community posts only
                tags: ["personal finance", budgeting]

          """, with: "")
      #expect(!techText.contains("gadget-reviews") && !financeText.contains("money-basics"))
      try e.commit("Remove two playlists", ["channels/tech-daily.yaml": techText, "channels/finance-focus.yaml": financeText])

      let plan = try await e.planJSON()
      let yt = PlanJSON.actions(plan).filter { ($0["action"] as? [String: Any])?["driver"] as? String == "youtube" }
      #expect(PlanJSON.callNames(plan, driver: "youtube") == ["youtube.playlists.delete"], "\(yt)")
      let del = yt.first?["action"] as? [String: Any]
      #expect((del?["payload"] as? [String: Any])?["id"] as? String == gadget, "\(String(describing: del))")
      let finance = PlanJSON.changes(plan).first { (($0["id"] as? [String: Any])?["name"] as? String) == "finance-focus" }
      #expect((finance?["pruneHeld"] as? [String] ?? []).contains { $0.contains("Money Basics") }, "\(String(describing: finance))")
      let text = try await e.run("plan")
      #expect(text.stdout.contains("kept"), "\(text)")

      let before = e.calls(Empire.playlistsDelete)
      try await e.apply()
      #expect(e.calls(Empire.playlistsDelete) - before == 1)
      let now = try await e.playlists()
      #expect(now[gadget] == nil)
      #expect(now[handMade]?.title == "Behind the scenes (hand-made)")
      #expect(now[moneyBasics]?.title == "Money Basics")
      let again = try await e.run("plan", "--detailed-exitcode", "--refresh", "all")
      #expect(again.status == 0, "\(again)")
      #expect(try await e.playlists()[handMade] != nil)
    }
  }

  @Test("drift: plan --refresh all shows it, apply corrects it with one channels.update; drift: report only reports it")
  func drift() async throws {
    try await Empire.with { e in
      try await e.apply()
      let wanted = try #require(try await e.description(ofChannel: "tech-daily"))
      for name in ["tech-daily", "finance-focus"] {
        let (code, _) = try await e.admin(
          "PATCH", "/state/youtube/channels/\(e.channelId(name))",
          ["brandingSettings": ["channel": ["description": "Edited in YouTube Studio"]]])
        #expect(code == 200)
      }
      // Stored observations are fresh: the default refresh does not see it.
      #expect(try await e.run("plan", "--detailed-exitcode").status == 0)

      let plan = try await e.planJSON(["--refresh", "all"])
      let res = PlanJSON.changes(plan)
      func change(_ n: String) -> [String: Any]? { res.first { (($0["id"] as? [String: Any])?["name"] as? String) == n } }
      #expect(
        (change("tech-daily")?["driftedFields"] as? [String] ?? []).contains("branding.description"),
        "\(String(describing: change("tech-daily")))")
      #expect(change("tech-daily")?["driftReportOnly"] as? Bool == false)
      #expect(change("finance-focus")?["driftReportOnly"] as? Bool == true)
      #expect((change("finance-focus")?["driftedFields"] as? [String] ?? []).contains("branding.description"))
      #expect(PlanJSON.callNames(plan, driver: "youtube") == ["youtube.channels.update"])
      let text = try await e.run("plan", "--refresh", "all")
      #expect(text.stdout.contains("drift"), "\(text)")

      let before = e.calls(Empire.channelsUpdate)
      try await e.apply(["--refresh", "all"])
      #expect(e.calls(Empire.channelsUpdate) - before == 1)
      #expect(try await e.description(ofChannel: "tech-daily") == wanted)
      #expect(try await e.description(ofChannel: "finance-focus") == "Edited in YouTube Studio")

      let status = try E2E.object(try await e.run("status", "--output", "json").stdout)
      let records = status["resources"] as? [[String: Any]] ?? []
      func cond(_ n: String, _ t: String) -> String? {
        let r = records.first {
          (($0["id"] as? [String: Any])?["name"] as? String) == n && (($0["id"] as? [String: Any])?["kind"] as? String) == "Channel"
        }
        return (r?["conditions"] as? [[String: Any]])?.first { $0["type"] as? String == t }?["status"] as? String
      }
      #expect(cond("finance-focus", "Drifted") == "True")
      #expect(cond("tech-daily", "Drifted") == "False")
      #expect(cond("tech-daily", "Ready") == "True")
      let file = try e.statusFile("status/channel/finance-focus.yaml")
      #expect(file.condition("Drifted")?.status == "True")
    }
  }
}

extension Empire {
  /// Makes a playlist through the YouTube API as the channel of `refreshToken` (by hand, not ytempire); returns its id.
  func youtubeInsertPlaylist(refreshToken: String, title: String) async throws -> String {
    let c = sandbox.credentials
    let tok = try await offload {
      try Processes.run([
        "curl", "-sS", self.sandbox.tokenURL, "--data-urlencode", "client_id=\(c.youtubeClientId)",
        "--data-urlencode", "client_secret=\(c.youtubeClientSecret)", "--data-urlencode", "refresh_token=\(refreshToken)",
        "--data-urlencode", "grant_type=refresh_token",
      ])
    }
    let access = try #require(try E2E.object(tok.stdout)["access_token"] as? String)
    let body = #"{"snippet":{"title":"\#(title)"},"status":{"privacyStatus":"private"}}"#
    let url = sandbox.youtubeURL + "/playlists?part=snippet,status"
    let r = try await offload {
      try Processes.run([
        "curl", "-sS", "-X", "POST", url,
        "-H", "Authorization: Bearer \(access)", "-H", "Content-Type: application/json", "--data-binary", body,
      ])
    }
    return try #require(try E2E.object(r.stdout)["id"] as? String, "\(r.stdout)")
  }
}
