import Foundation
import TestSupport
import Testing
import YAMLKit

/// What apply refuses, defers or cannot do: safety thresholds, stale and edited plan files,
/// quota deferral, no TTY without --auto-approve, a second reconciler on one state directory.
@Suite("end to end: safety")
struct SafetyTests {
  static let defaultPolicy = "policy: {prune: true, maxDeletePercent: 30, maxUpdatePercent: 50, minExisting: 10}"

  @Test("maxDeletePercent: apply refuses (exit 1, nothing deleted); --force applies")
  func safetyThreshold() async throws {
    try await Empire.with(
      config: { text in
        #expect(text.contains(Self.defaultPolicy))
        return text.replacingOccurrences(
          of: Self.defaultPolicy, with: "policy: {prune: true, maxDeletePercent: 30, maxUpdatePercent: 100, minExisting: 1}")
      },
      { e in
        try await e.apply()
        let owned = try await e.playlists().filter {
          [e.channelId("tech-daily"), e.channelId("science-simplified")].contains($0.value.channel)
        }
        #expect(owned.count == 5)
        // Six of the seventeen managed resources leave the repository (35% > 30%).
        try e.commit(
          "Remove most of the empire",
          [
            "channels/tech-daily.yaml": nil, "channels/science-simplified.yaml": nil,
            "ratelimits/cloudflare-api.yaml": nil, "ratelimits/n8n-api.yaml": nil, "ratelimits/vault-api.yaml": nil,
            "security/ytempire.yaml": nil,
            // schedules that name the removed channels
            "schedules/analytics-daily.yaml": nil, "schedules/content-generation.yaml": nil,
          ])
        let before = e.sandbox.callCounts
        let playlistsBefore = try await e.playlists().keys.sorted()
        let refused = try await e.run("apply", "--auto-approve")
        #expect(refused.status == 1, "\(refused)")
        #expect(refused.stderr.contains("safety") && refused.stderr.contains("--force"), "\(refused)")
        #expect(refused.stdout.contains("maxDeletePercent"), "\(refused)")
        #expect(
          e.sandbox.callCounts.filter { !$0.key.contains(" GET ") && !$0.key.hasPrefix("oauth") }
            == before.filter { !$0.key.contains(" GET ") && !$0.key.hasPrefix("oauth") })
        #expect(try await e.playlists().keys.sorted() == playlistsBefore)
        // Still planned: nothing was forgotten.
        let plan = try await e.planJSON()
        #expect((plan["safety"] as? [[String: Any]] ?? []).contains { $0["rule"] as? String == "maxDeletePercent" })

        let deletesBefore = e.calls(Empire.playlistsDelete)
        let forced = try await e.apply(["--force"])
        #expect(forced.stdout.contains("0 failed"), "\(forced)")
        #expect(e.calls(Empire.playlistsDelete) - deletesBefore == 5)
        let left = try await e.playlists()
        for id in owned.keys { #expect(left[id] == nil) }
        #expect(try await e.run("plan", "--detailed-exitcode").status == 0)
      })
  }

  @Test("plan files: drift or a new commit makes them stale; a changed byte fails the digest; a fresh one applies")
  func stalePlan() async throws {
    try await Empire.with { e in
      try await e.apply()
      let text = try e.channelFile("tech-daily").replacingOccurrences(
        of: "explained in ten minutes or less.", with: "explained in ten minutes.")
      try e.commit("Shorter description", ["channels/tech-daily.yaml": text])
      let p1 = e.tmp.sub("p1.json")
      #expect(try await e.run("plan", "--out", p1).status == 0)

      // Drift on the resource the plan changes.
      let (code, _) = try await e.admin(
        "PATCH", "/state/youtube/channels/\(e.channelId("tech-daily"))",
        ["brandingSettings": ["channel": ["keywords": "edited in studio"]]])
      #expect(code == 200)
      let writes = e.youtubeWrites
      let stale = try await e.run("apply", p1, "--auto-approve")
      #expect(stale.status == 1, "\(stale)")
      #expect(stale.stderr.contains("plan is stale"), "\(stale)")
      #expect(e.youtubeWrites == writes)

      // A new commit after the plan.
      let p2 = e.tmp.sub("p2.json")
      #expect(try await e.run("plan", "--out", p2).status == 0)
      try e.commit("Another commit", ["README.md": "changed\n"])
      let moved = try await e.run("apply", p2, "--auto-approve")
      #expect(moved.status == 1, "\(moved)")
      #expect(moved.stderr.contains("plan is stale"), "\(moved)")
      #expect(e.youtubeWrites == writes)

      // One byte changed in an otherwise valid plan.
      let p3 = e.tmp.sub("p3.json")
      #expect(try await e.run("plan", "--out", p3).status == 0)
      let original = try String(contentsOfFile: p3, encoding: .utf8)
      let edited = original.replacingOccurrences(of: "explained in ten minutes.", with: "explained in ten minutes!")
      #expect(edited != original && edited.utf8.count == original.utf8.count)
      try edited.write(toFile: p3, atomically: true, encoding: .utf8)
      let damaged = try await e.run("apply", p3, "--auto-approve")
      #expect(damaged.status == 1, "\(damaged)")
      #expect(damaged.stderr.contains("digest"), "\(damaged)")
      #expect(e.youtubeWrites == writes)

      // A fresh plan file applies.
      let p4 = e.tmp.sub("p4.json")
      #expect(try await e.run("plan", "--out", p4).status == 0)
      try await e.apply([p4])
      #expect(e.youtubeWrites > writes)
      #expect(try await e.description(ofChannel: "tech-daily")?.hasSuffix("explained in ten minutes.") == true)
      #expect(try await e.run("plan", "--detailed-exitcode").status == 0)
    }
  }

  @Test("a plan file stays applicable when only a resource it does not change drifts; --target limits the plan")
  func unrelatedDriftIsNotStale() async throws {
    try await Empire.with { e in
      try await e.apply()
      let text = try e.channelFile("tech-daily").replacingOccurrences(
        of: "explained in ten minutes or less.", with: "explained in ten minutes.")
      try e.commit("Shorter description", ["channels/tech-daily.yaml": text])
      let targeted = try await e.planJSON(["--target", "Channel/science-simplified"])
      #expect(PlanJSON.actions(targeted).isEmpty, "\(PlanJSON.actions(targeted))")
      let file = e.tmp.sub("p.json")
      #expect(try await e.run("plan", "--out", file).status == 0)
      let (code, _) = try await e.admin(
        "PATCH", "/state/youtube/channels/\(e.channelId("science-simplified"))",
        ["brandingSettings": ["channel": ["description": "Edited in YouTube Studio"]]])
      #expect(code == 200)
      let before = e.calls(Empire.channelsUpdate)
      let r = try await e.run("apply", file, "--auto-approve")
      #expect(r.status == 0, "\(r)")
      #expect(e.calls(Empire.channelsUpdate) - before == 1)
      #expect(try await e.description(ofChannel: "science-simplified") == "Edited in YouTube Studio")
    }
  }

  @Test("quota: actions the ledger cannot pay are deferred with an ETA, never called; status says Deferred")
  func quotaDeferral() async throws {
    try await Empire.with(
      edit: { repo in
        let path = repo.path + "/ratelimits/youtube-api.yaml"
        var y = try String(contentsOfFile: path, encoding: .utf8)
        for (a, b) in [
          ("units: 10000", "units: 300"), ("reservedPerChannel: 3000", "reservedPerChannel: 50"),
          ("emergencyReserve: 1000", "emergencyReserve: 50"),
        ] {
          #expect(y.contains(a))
          y = y.replacingOccurrences(of: a, with: b)
        }
        try y.write(toFile: path, atomically: true, encoding: .utf8)
      },
      { e in
        let file = e.tmp.sub("plan.json")
        let r = try await e.run("plan", "--out", file)
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("DEFERRED"), "\(r)")
        #expect(r.stdout.contains("until 20"), "\(r)")
        let plan = try E2E.object(try String(contentsOfFile: file, encoding: .utf8))
        let actions = PlanJSON.actions(plan)
        let deferred = actions.filter { $0["deferred"] != nil }
        #expect(!deferred.isEmpty)
        #expect(deferred.allSatisfy { ($0["deferred"] as? [String: Any])?["eta"] is String })
        var runnable: [String: Int] = [:]
        for a in actions where a["deferred"] == nil {
          let call = PlanJSON.callNames(["actions": [a]]).first ?? "?"
          runnable[call, default: 0] += 1
        }

        let before = e.sandbox.callCounts
        let applied = try await e.run("apply", file, "--auto-approve")
        #expect(applied.status == 0, "\(applied)")
        #expect(applied.stdout.contains("\(deferred.count) deferred"), "\(applied)")
        let after = e.sandbox.callCounts
        func delta(_ k: String) -> Int { (after[k] ?? 0) - (before[k] ?? 0) }
        #expect(delta(Empire.channelsUpdate) == runnable["youtube.channels.update"] ?? 0)
        #expect(delta(Empire.playlistsInsert) == runnable["youtube.playlists.insert"] ?? 0)
        #expect(delta(Empire.playlistsUpdate) == runnable["youtube.playlists.update"] ?? 0)
        #expect(delta(Empire.playlistsDelete) == 0)
        #expect(e.sandbox.youtubeQuotaUsed <= 300)

        let deferredChannels = Set(deferred.map(PlanJSON.resource).filter { $0.hasPrefix("Channel/") }.map { String($0.dropFirst(8)) })
        #expect(!deferredChannels.isEmpty)
        for name in deferredChannels {
          let status = try e.statusFile("status/channel/\(name).yaml")
          let d = try #require(status.condition("Deferred"), "\(name)")
          #expect(d.status == "True")
          #expect(d.message.contains("eta 20"), "\(d.message)")
          #expect(status.condition("Ready")?.status == "False")
        }
      })
  }

  @Test("apply without a TTY and without --auto-approve refuses and changes nothing")
  func noTTY() async throws {
    try await Empire.with { e in
      let r = try await e.run("apply")
      #expect(r.status == 1, "\(r)")
      #expect(r.stderr.contains("--auto-approve"), "\(r)")
      #expect(e.youtubeWrites == 0)
      #expect(e.sandbox.callCounts.isEmpty, "\(e.sandbox.callCounts)")
      #expect(throws: (any Error).self) { try e.repo.git("rev-parse", "--verify", "refs/heads/ytempire/status") }
      #expect(try await e.run("status").stdout.contains("never"))
    }
  }

  @Test("on a TTY apply asks: anything but yes cancels and changes nothing; yes applies")
  func ttyConfirmation() async throws {
    try await Empire.with { e in
      // script(1) gives the binary a pseudo-terminal; the answer comes on its stdin.
      func onTTY(_ answer: String) async throws -> Run {
        let cmd = "\(E2E.binary) apply --config \(e.configPath)"
        let cwd = e.tmp.path
        let r = try await offload {
          try Processes.run(["script", "-qec", cmd, "/dev/null"], cwd: cwd, env: ["NO_COLOR": "1"], stdin: answer, check: false)
        }
        return Run(status: r.status, stdout: r.stdout, stderr: r.stderr)
      }
      let no = try await onTTY("no\n")
      #expect(no.status == 1, "\(no)")
      #expect(no.stdout.contains("Only 'yes' proceeds"), "\(no)")
      #expect(no.stdout.contains("Apply cancelled; nothing changed."), "\(no)")
      #expect(e.youtubeWrites == 0)
      let yes = try await onTTY("yes\n")
      #expect(yes.status == 0, "\(yes)")
      #expect(yes.stdout.contains("Apply complete"), "\(yes)")
      #expect(e.youtubeWrites > 0)
      #expect(try await e.run("plan", "--detailed-exitcode").status == 0)
    }
  }

  @Test("a second apply on the same state directory fails and names the holder's pid")
  func secondApplyIsLockedOut() async throws {
    try await Empire.with(faults: "youtube=latency:1s") { e in
      let first = try e.spawn(["apply", "--auto-approve"], log: "first")
      let pid = first.processIdentifier
      let lock = e.stateDir + "/lock"
      let deadline = Date().addingTimeInterval(60)
      while Date() < deadline {
        if (try? String(contentsOfFile: lock, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) == "\(pid)" { break }
        try await Task.sleep(for: .milliseconds(20))
      }
      #expect(first.isRunning)
      let second = try await e.run("apply", "--auto-approve")
      #expect(second.status == 1, "\(second)")
      #expect(second.stderr.contains("pid \(pid)"), "\(second)")
      kill(pid, SIGKILL)
      try await waitForExit(first)
      // The lock dies with its holder.
      try await e.clearFaults()
      try await e.apply()
    }
  }
}
