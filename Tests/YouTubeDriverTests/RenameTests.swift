import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import Sandbox
import TestSupport
import Testing

@testable import YouTubeDriver

/// DESIGN A10 "Identity and renames" in the driver, against the sandbox: a playlist whose key
/// changed keeps its YouTube playlist (same id, its videos), and a delete knows what it would destroy.
@Suite("YouTube playlist renames and non-empty deletes against the sandbox")
struct YouTubeRenameTests {
  static let tech = ResourceID(.channel, "tech-daily")

  /// tech-daily's desired form with playlist `old` under the key `new` (and its fields edited).
  static func rekeyed(_ rig: SandboxRig, _ old: String, _ new: String, edit: (inout [String: JSONValue]) -> Void = { _ in })
    -> ObserveTarget
  {
    var d = rig.driver.desired(Example.channel("tech-daily"), in: rig.index).object!
    var playlists = d["playlists"]!.object!
    var p = playlists.removeValue(forKey: old)!.object!
    edit(&p)
    playlists[new] = .object(p)
    d["playlists"] = .object(playlists)
    return ObserveTarget(id: tech, desired: .object(d), external: rig.loop.externals.withLock { $0[tech] ?? [:] })
  }

  static func converged(_ rig: SandboxRig) async throws -> String {
    try await rig.loop.converge(rig.targets(only: "tech-daily"), context: rig.context)
    return try #require(rig.loop.externals.withLock { $0[tech]?["playlists/ai-explained"] })
  }

  @Test("a key renamed in git with the title unchanged is re-keyed: same id, no call to YouTube, no insert, no delete")
  func renameByTitle() async throws {
    try await YouTubeSandboxTests.withSandbox { rig in
      let pid = try await Self.converged(rig)
      let (posts, deletes, puts) = (
        rig.count("youtube POST /youtube/v3/playlists"), rig.count("youtube DELETE /youtube/v3/playlists"),
        rig.count("youtube PUT /youtube/v3/playlists")
      )
      let target = Self.rekeyed(rig, "ai-explained", "ai-explainers")
      let observed = try await rig.observe([target])
      let actions = rig.diff([target], observed)
      #expect(actions.keys() == ["tech-daily:update:playlist/ai-explainers"])
      let a = try #require(actions.first)
      #expect(a.changes == [FieldChange(path: "playlists.ai-explainers.key", old: "ai-explained", new: "ai-explainers")])
      #expect(a.calls.isEmpty && a.units == 0)  // nothing changes on YouTube: nothing is paid
      #expect(a.summary == "playlist \"AI Explained\" (\(pid)), renamed from ai-explained")
      let after = try await rig.apply(actions, observed)
      #expect(rig.count("youtube POST /youtube/v3/playlists") == posts)
      #expect(rig.count("youtube DELETE /youtube/v3/playlists") == deletes)
      #expect(rig.count("youtube PUT /youtube/v3/playlists") == puts)
      let ext = rig.loop.externals.withLock { $0[Self.tech] ?? [:] }
      #expect(ext["playlists/ai-explainers"] == pid)
      #expect(ext["playlists/ai-explained"] == nil)
      #expect(after[Self.tech]?["playlists"]?["ai-explainers"]?["id"]?.string == pid)
      #expect(after[Self.tech]?["playlists"]?["ai-explained"] == nil)
      // Observed again with the new records: nothing to do, and the state apply returned is what YouTube shows.
      let again = Self.rekeyed(rig, "ai-explained", "ai-explainers")
      let fresh = try await rig.observe([again])
      #expect(rig.diff([again], fresh).isEmpty)
      #expect(fresh[Self.tech] == after[Self.tech])
    }
  }

  @Test("renamedFrom carries a playlist whose key and title both change: one playlists.update priced from the RateLimit, same id")
  func renamedFromWithNewTitle() async throws {
    try await YouTubeSandboxTests.withSandbox { rig in
      let pid = try await Self.converged(rig)
      let (posts, deletes, quota) = (
        rig.count("youtube POST /youtube/v3/playlists"), rig.count("youtube DELETE /youtube/v3/playlists"), rig.sb.youtubeQuotaUsed
      )
      let target = Self.rekeyed(rig, "ai-explained", "machine-learning") { p in
        p["title"] = "Machine Learning, Explained"
        p["renamedFrom"] = "ai-explained"
      }
      let observed = try await rig.observe([target])
      let observing = rig.sb.youtubeQuotaUsed - quota
      let actions = rig.diff([target], observed)
      #expect(actions.keys() == ["tech-daily:update:playlist/machine-learning"])
      let a = try #require(actions.first)
      #expect(a.changes.map(\.path) == ["playlists.machine-learning.key", "playlists.machine-learning.title"])
      #expect(a.calls.map(\.name) == ["youtube.playlists.update"])
      #expect(a.units == 50)  // priced like the update it is (youtube-api's playlists.update cost)
      let after = try await rig.apply(actions, observed)
      #expect(rig.count("youtube POST /youtube/v3/playlists") == posts)
      #expect(rig.count("youtube DELETE /youtube/v3/playlists") == deletes)
      #expect(rig.sb.youtubeQuotaUsed - quota == observing + 50)
      #expect(rig.loop.externals.withLock { $0[Self.tech]?["playlists/machine-learning"] } == pid)
      let state = try JSONValue.parse(try await rig.admin("GET", "/state/youtube/playlists/\(pid)/snippet").body)
      #expect(state["title"]?.string == "Machine Learning, Explained")
      // Applied state = a fresh observation (the item count is carried over the update).
      let fresh = try await rig.observe([
        Self.rekeyed(rig, "ai-explained", "machine-learning") { p in p["title"] = "Machine Learning, Explained" }
      ])
      #expect(fresh[Self.tech] == after[Self.tech])
    }
  }

  @Test(
    "the observation reads each playlist's itemCount in the same playlists.list call; a delete of a playlist with videos says what it holds"
  )
  func nonEmptyDeleteSaysWhatItHolds() async throws {
    try await YouTubeSandboxTests.withSandbox { rig in
      let pid = try await Self.converged(rig)
      #expect(try await rig.admin("PATCH", "/state/youtube/playlists/\(pid)", ["contentDetails": ["itemCount": 7]]).status == 200)
      let lists = rig.count("youtube GET /youtube/v3/playlists")
      var d = rig.driver.desired(Example.channel("tech-daily"), in: rig.index).object!
      var playlists = d["playlists"]!.object!
      playlists["ai-explained"] = nil
      d["playlists"] = .object(playlists)
      let target = ObserveTarget(id: Self.tech, desired: .object(d), external: rig.loop.externals.withLock { $0[Self.tech] ?? [:] })
      let observed = try await rig.observe([target])
      #expect(rig.count("youtube GET /youtube/v3/playlists") == lists + 1)
      #expect(observed[Self.tech]?["playlists"]?["ai-explained"]?["itemCount"] == 7)
      let actions = rig.diff([target], observed)
      #expect(actions.keys() == ["tech-daily:delete:playlist/ai-explained"])
      #expect(actions.first?.holds == "7 videos")
      #expect(actions.first?.changes.contains { $0.path.hasSuffix("itemCount") } == false)

      // An empty playlist carries nothing to block.
      #expect(try await rig.admin("PATCH", "/state/youtube/playlists/\(pid)", ["contentDetails": ["itemCount": 0]]).status == 200)
      let empty = rig.diff([target], try await rig.observe([target]))
      #expect(empty.keys() == ["tech-daily:delete:playlist/ai-explained"] && empty.first?.holds == nil)
    }
  }
}

@Suite struct PlaylistRenameRuleTests {
  static func p(_ title: String, from: String? = nil) -> JSONValue {
    var o: [String: JSONValue] = ["title": .string(title)]
    if let from { o["renamedFrom"] = .string(from) }
    return .object(o)
  }

  @Test func renamedFromWinsOverTitlesAndEachOldKeyGoesOnce() {
    let have: [String: JSONValue] = ["a": Self.p("Same"), "b": Self.p("Same"), "kept": Self.p("Kept")]
    // x names b explicitly; y matches by title and gets the other old key; z finds none left.
    let want: [String: JSONValue] = ["x": Self.p("Other", from: "b"), "y": Self.p("Same"), "z": Self.p("Same"), "kept": Self.p("Kept")]
    #expect(PlaylistRenames.pairs(want: want, have: have) == ["x": "b", "y": "a"])
    // A renamedFrom that names a key still desired, or not owned, takes nothing (title matching still may).
    #expect(PlaylistRenames.pairs(want: ["n": Self.p("Kept", from: "kept"), "kept": Self.p("Kept")], have: have) == [:])
    #expect(PlaylistRenames.pairs(want: ["n": Self.p("Same", from: "ghost")], have: have) == ["n": "a"])
  }

  @Test func theDesiredFormCarriesRenamedFromAndTheDiffIgnoresItAsAField() throws {
    let r = try #require(
      decode(
        """
        apiVersion: ytempire.io/v1
        kind: Channel
        metadata: {name: c}
        spec:
          youtube: {channelId: UCPtYgjmUhBel31iEl2hpChY, credentials: yt}
          branding: {title: T}
          playlists:
            - {name: new-key, title: X, renamedFrom: old-key}
        """
      ).first)
    let d = Canonical.desired(try #require(r.channel))
    #expect(d["playlists"]?["new-key"]?["renamedFrom"] == "old-key")
    #expect(PlaylistRenames.fields(d["playlists"]!["new-key"]!) == ["title": "X", "privacy": "public"])
  }
}
