import Foundation
import TestSupport
import Testing

/// DESIGN A10 "Identity and renames" through the built binary: a playlist key renamed in git
/// keeps its YouTube playlist, and a playlist that still holds videos is not deleted unless forced.
@Suite("end to end: renames never destroy", .serialized)
struct RenameEndToEndTests {
  @Test("a renamed playlist key keeps its id (no playlists.delete, no insert); deleting it with videos in it is blocked until --force")
  func renameThenBlockedDelete() async throws {
    try await Empire.with { e in
      try await e.apply()
      let tech = e.channelId("tech-daily")
      let pid = try #require(try await e.playlists().first { $0.value.title == "AI Explained" && $0.value.channel == tech }?.key)
      let (inserts, deletes, updates) = (e.calls(Empire.playlistsInsert), e.calls(Empire.playlistsDelete), e.calls(Empire.playlistsUpdate))

      // The key changes in git; the title does not.
      let original = try e.channelFile("tech-daily")
      let renamed = original.replacingOccurrences(of: "- name: ai-explained\n", with: "- name: ai-explainers\n")
      #expect(renamed != original)
      try e.commit("Rename the ai-explained playlist key", ["channels/tech-daily.yaml": renamed])

      let text = try await e.run("plan")
      #expect(text.status == 0, "\(text)")
      #expect(text.stdout.contains("~ youtube: update playlist \"AI Explained\" (\(pid)), renamed from ai-explained"), "\(text)")
      #expect(text.stdout.contains("playlists.ai-explainers.key: \"ai-explained\" → \"ai-explainers\""), "\(text)")
      #expect(!text.stdout.contains("playlists.delete") && !text.stdout.contains("playlists.insert"), "\(text)")
      try await e.apply()
      #expect(e.calls(Empire.playlistsInsert) == inserts)
      #expect(e.calls(Empire.playlistsDelete) == deletes)
      #expect(e.calls(Empire.playlistsUpdate) == updates)  // same title, same fields: YouTube is not called
      let after = try await e.playlists()
      #expect(after[pid]?.title == "AI Explained")
      #expect(try await e.duplicatePlaylistTitles() == [])
      let status = try e.statusFile("status/channel/tech-daily.yaml")
      let lists = try #require(status[path: "status", "external", "playlists"])
      #expect(lists["ai-explainers"]?.scalarText == pid)
      #expect(lists["ai-explained"] == nil)
      let again = try await e.run("plan", "--detailed-exitcode", "--refresh", "all")
      #expect(again.status == 0, "\(again)")

      // The playlist now holds videos; removing its entry from git must not take them with it.
      let (code, _) = try await e.admin("PATCH", "/state/youtube/playlists/\(pid)", ["contentDetails": ["itemCount": 3]])
      #expect(code == 200)
      let lines = renamed.components(separatedBy: "\n")
      let start = try #require(lines.firstIndex { $0.hasSuffix("- name: ai-explainers") })
      var end = start + 1
      while end < lines.count, !lines[end].contains("- name:"), lines[end].hasPrefix(String(repeating: " ", count: 6)) { end += 1 }
      let removed = (lines[..<start] + lines[end...]).joined(separator: "\n")
      #expect(!removed.contains("ai-explainers") && removed.contains("gadget-reviews"))
      try e.commit("Drop the AI Explained playlist", ["channels/tech-daily.yaml": removed])

      let blocked = try await e.run("plan", "--refresh", "all")
      #expect(
        blocked.stdout.contains(
          "- youtube: delete playlist \"AI Explained\" (\(pid))  [youtube.playlists.delete, 50 units]  holds 3 videos — blocked"),
        "\(blocked)")
      #expect(blocked.stdout.contains("1 delete blocked."), "\(blocked)")
      let json = try await e.planJSON(["--refresh", "all"])
      let del = try #require(PlanJSON.actions(json).first { ($0["action"] as? [String: Any])?["operation"] as? String == "delete" })
      #expect((del["deferred"] as? [String: Any])?["reason"] as? String == "nonEmpty")
      #expect((del["action"] as? [String: Any])?["holds"] as? String == "3 videos")
      let md = try await e.run("plan", "--output", "markdown", "--refresh", "all")
      #expect(md.stdout.contains("— **blocked**: `holds 3 videos — blocked"), "\(md)")
      try await e.apply()
      #expect(e.calls(Empire.playlistsDelete) == deletes)
      #expect(try await e.playlists()[pid] != nil)
      let held = try e.statusFile("status/channel/tech-daily.yaml").condition("Deferred")
      #expect(
        held?.status == "True" && held?.reason == "DeleteBlocked" && held?.message.hasPrefix("holds 3 videos") == true,
        "\(String(describing: held))")

      try await e.apply(["--force"])
      #expect(e.calls(Empire.playlistsDelete) == deletes + 1)
      #expect(try await e.playlists()[pid] == nil)
    }
  }
}
