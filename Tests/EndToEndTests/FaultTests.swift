import Foundation
import TestSupport
import Testing

/// The test repository's YouTube RateLimit with short retry delays (the example's are a
/// minute), so that runs against a faulty sandbox finish in test time.
func fastRetries(_ repo: GitFixture) throws {
  let path = repo.path + "/ratelimits/youtube-api.yaml"
  var y = try String(contentsOfFile: path, encoding: .utf8)
  for (a, b) in [
    ("initialDelay: 1s", "initialDelay: 50ms"), ("maxDelay: 60s", "maxDelay: 500ms"),
    ("baseDelay: 60s", "baseDelay: 100ms"), ("baseDelay: 5s", "baseDelay: 50ms"), ("baseDelay: 2s", "baseDelay: 50ms"),
  ] {
    guard y.contains(a) else { throw E2EFailure("youtube-api.yaml has no \(a)") }
    y = y.replacingOccurrences(of: a, with: b)
  }
  try y.write(toFile: path, atomically: true, encoding: .utf8)
}

/// Deterministic pseudo-random numbers (SplitMix64).
struct SplitMix: RandomNumberGenerator {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

@Suite("end to end: faults")
struct FaultTests {
  @Test("503s and 429s: repeated applies converge, within the quota, with no duplicate playlist")
  func errorsAndThrottling() async throws {
    let spec = "youtube=error:0.2:503:backendError;youtube=throttle:0.2:1"
    try await Empire.with(faults: spec, faultSeed: 7, edit: fastRetries) { e in
      var converged = false
      var rounds: [String] = []
      for round in 1...8 {
        let r = try await e.run("apply", "--auto-approve")
        rounds.append("round \(round): exit \(r.status): \(r.stdout.split(separator: "\n").last { $0.hasPrefix("Apply complete") } ?? "")")
        #expect(e.sandbox.youtubeQuotaUsed <= 10_000)
        #expect(try await e.duplicatePlaylistTitles() == [])
        let p = try await e.run("plan", "--detailed-exitcode")
        if p.status == 0 && p.stdout.contains("No changes") {
          converged = true
          break
        }
      }
      #expect(converged, "\(rounds)")
      #expect(e.calls("youtube PUT /youtube/v3/channels") >= 3)
      // The truth, without faults.
      try await e.clearFaults()
      let truth = try await e.run("plan", "--refresh", "all", "--detailed-exitcode")
      #expect(truth.status == 0, "\(truth)\n\(rounds)")
      #expect(try await e.duplicatePlaylistTitles() == [])
      #expect(e.sandbox.youtubeQuotaUsed <= 10_000)
    }
  }
}

extension FaultTests {
  /// A POST /playlists (playlists.insert) whose answer is cut after it executed is not sent
  /// again (ResilientHTTP: OutcomeUnknown); the action fails, the next plan observes the
  /// channel and adopts the playlist by its title.
  @Test("connection reset after playlists.insert executed: repeated applies converge without a duplicate playlist")
  func resetAfterInsert() async throws {
    try await Empire.with(faults: "youtube:POST /youtube/v3/playlists=reset:0.5", faultSeed: 11, edit: fastRetries) { e in
      var rounds: [String] = []
      var converged = false
      for round in 1...6 {
        let r = try await e.run("apply", "--auto-approve")
        rounds.append("round \(round): exit \(r.status): \(r.stdout.split(separator: "\n").last { $0.hasPrefix("Apply complete") } ?? "")")
        #expect(try await e.duplicatePlaylistTitles() == [], "round \(round): \(rounds)")
        let p = try await e.run("plan", "--detailed-exitcode")
        if p.status == 0 {
          converged = true
          break
        }
      }
      #expect(converged, "\(rounds)")
      try await e.clearFaults()
      #expect(try await e.run("plan", "--refresh", "all", "--detailed-exitcode").status == 0)
      // Every playlist of the repository exists exactly once.
      let titles = try await e.playlists().values.map(\.title)
      for t in [
        "AI Explained", "Gadget Reviews", "Shorts backlog", "Market Minute", "Money Basics", "Space in Ten Minutes", "Everyday Physics",
      ] {
        #expect(titles.count { $0 == t } == 1, "\(t): \(titles)")
      }
    }
  }
}

/// kill -9 during apply at many points; a restart converges with no duplicate playlist and
/// no open journal entry. `YTEMPIRE_CHAOS_KILLS` kill points (default 20; `make chaos`: 200).
@Suite("end to end: chaos")
struct ChaosTests {
  static var kills: Int { ProcessInfo.processInfo.environment["YTEMPIRE_CHAOS_KILLS"].flatMap(Int.init) ?? 20 }

  /// The channel manifest of one round: a new description and two playlists of its own
  /// (the previous round's are removed, so each round creates, updates and deletes).
  static func manifest(_ base: String, channel: String, round: Int) -> String {
    // Drop the branding's description (one line or a folded block) ...
    var lines = base.components(separatedBy: "\n")
    if let b = lines.firstIndex(of: "  branding:"), let i = lines[b...].firstIndex(where: { $0.hasPrefix("    description:") }) {
      let folded = lines[i].hasSuffix(">-")
      lines.remove(at: i)
      while folded && i < lines.count && lines[i].hasPrefix("      ") { lines.remove(at: i) }
      lines.insert("    description: Round \(round) of \(channel).", at: b + 1)
    }
    var s = lines.joined(separator: "\n")
    // ... and add this round's playlists.
    let extra = """
          - name: chaos-\(round)-a
            title: Chaos \(round) A
            privacy: private
          - name: chaos-\(round)-b
            title: Chaos \(round) B
            description: Made in round \(round).
            privacy: unlisted
            tags: [chaos]

      """
    s = s.replacingOccurrences(of: "  content:\n", with: extra + "  content:\n")
    return s
  }

  /// Every round spends about 500 units: a quota far larger than YouTube's default, in
  /// the sandbox's and in the test repository's RateLimit, so 200 rounds never run out.
  static func largeQuota(_ repo: GitFixture) throws {
    try fastRetries(repo)
    let path = repo.path + "/ratelimits/youtube-api.yaml"
    let y = try String(contentsOfFile: path, encoding: .utf8)
    guard y.contains("units: 10000\n") else { throw E2EFailure("youtube-api.yaml: no units: 10000") }
    try y.replacingOccurrences(of: "units: 10000\n", with: "units: 100000000\n").write(toFile: path, atomically: true, encoding: .utf8)
  }

  /// `policy.unknownOutcomeWait` set to `wait` in the rendered configuration.
  static func settle(_ wait: String) -> (String) -> String {
    { $0.replacingOccurrences(of: "minExisting: 10}", with: "minExisting: 10, unknownOutcomeWait: \(wait)}") }
  }

  @Test("kill -9 at random points of apply, then restart: converges, no duplicate playlist, no open journal entry")
  func killAndRestart() async throws {
    try await Empire.with(
      faults: "youtube=latency:50ms", faultSeed: 3, dailyUnits: 100_000_000, edit: Self.largeQuota,
      config: Self.settle("1s")
    ) { e in
      let names = ["tech-daily", "science-simplified"]
      var bases: [String: String] = [:]
      for n in names { bases[n] = try e.channelFile(n) }
      try await e.apply()
      // Calibration: how long one round's apply takes on this machine, now.
      var calibration: [String: String?] = [:]
      for n in names { calibration["channels/\(n).yaml"] = Self.manifest(bases[n]!, channel: n, round: 0) }
      try e.commit("Chaos round 0", calibration)
      let start = Date()
      try await e.apply()
      var full = Date().timeIntervalSince(start)
      var rng = SplitMix(state: 0x5EED)
      var log: [String] = []
      var effective = 0
      for round in 1...Self.kills {
        var files: [String: String?] = [:]
        for n in names { files["channels/\(n).yaml"] = Self.manifest(bases[n]!, channel: n, round: round) }
        try e.commit("Chaos round \(round)", files)
        let writesBefore = e.youtubeWrites
        // A delay from nothing to as long as a whole round's apply took.
        let delay = Double(rng.next() % 10_000) / 10_000 * max(0.3, full)
        let p = try e.spawn(["apply", "--auto-approve"], log: "chaos-\(round)")
        let t0 = Date()
        while p.isRunning && Date().timeIntervalSince(t0) < delay { try await Task.sleep(for: .milliseconds(5)) }
        let wasRunning = p.isRunning
        // The machine's load changes while the suite runs: an apply that finished before its
        // kill point says how long a round takes now.
        if !wasRunning { full = (full + Date().timeIntervalSince(t0)) / 2 }
        kill(p.processIdentifier, SIGKILL)
        try await waitForExit(p)
        let landed = e.youtubeWrites - writesBefore
        if wasRunning && landed > 0 { effective += 1 }
        #expect(try await e.duplicatePlaylistTitles() == [], "after the kill of round \(round)")

        var restart = try await e.run("apply", "--auto-approve")
        if restart.stdout.contains("got no answer") {
          // A create the kill cut off may still be executed: it waits out unknownOutcomeWait (1s), then is adopted.
          try await Task.sleep(for: .milliseconds(1100))
          restart = try await e.run("apply", "--auto-approve")
        }
        #expect(
          restart.stdout.contains(", 0 failed, 0 deferred") || restart.stdout.contains("Nothing to apply"),
          "round \(round) restart: \(restart)")
        log.append(
          "round \(round): killed after \(String(format: "%.3f", delay))s (\(wasRunning ? "running" : "already done"), \(landed) writes landed); restart exit \(restart.status)"
        )
        #expect(restart.status == 0, "round \(round) restart: \(restart)")
        // A kill while the status commit was being written leaves no lock behind.
        #expect(!restart.stdout.contains("committing it failed"), "round \(round) restart: \(restart)")
        #expect(try await e.duplicatePlaylistTitles() == [], "after the restart of round \(round)")
        if round % 5 == 0 || round == Self.kills {
          let plan = try await e.run("plan", "--detailed-exitcode")
          #expect(plan.status == 0 && plan.stdout.contains("No changes"), "round \(round): \(plan)")
        }
      }
      // Every round's playlists exist once, the removed ones are gone.
      try await e.clearFaults()
      let truth = try await e.run("plan", "--refresh", "all", "--detailed-exitcode")
      #expect(truth.status == 0, "\(truth)")
      let titles = try await e.playlists().values.map(\.title)
      let n = Self.kills
      #expect(titles.filter { $0.hasPrefix("Chaos ") }.sorted() == ["Chaos \(n) A", "Chaos \(n) A", "Chaos \(n) B", "Chaos \(n) B"])
      #expect(try await e.duplicatePlaylistTitles() == [])
      let status = try e.statusFile("status/channel/tech-daily.yaml")
      #expect(status[path: "status", "lastAppliedRevision"]?.scalarText == "main@sha1:\(try e.repo.head())")
      #expect(status.condition("Ready")?.status == "True")
      // At least some kills landed in the middle of the work.
      #expect(effective >= 1, "\(log.joined(separator: "\n"))")
      print("chaos: \(Self.kills) kill points, \(effective) mid-apply\n" + log.joined(separator: "\n"))
    }
  }

  @Test("a create the service executes after its client was killed is not sent again: deferred until it settles, then adopted")
  func lateExecutionIsNotDuplicated() async throws {
    let rounds = max(3, Self.kills / 10)
    // The sandbox holds every playlist insert 10 s before it executes it, whether or not the
    // client is still there; a create's answer may be lost for 14 s. (10 s: the restarted
    // apply must observe before the held insert lands, also on a loaded machine — at 4 s it
    // did not at a load average of 9.)
    try await Empire.with(
      faults: "youtube:POST /youtube/v3/playlists=latency:10s", dailyUnits: 100_000_000, edit: Self.largeQuota,
      config: Self.settle("14s")
    ) { e in
      let base = try e.channelFile("tech-daily")
      try await e.apply()
      for round in 1...rounds {
        try e.commit("Late round \(round)", ["channels/tech-daily.yaml": Self.manifest(base, channel: "tech-daily", round: round)])
        let inserts = e.calls(Empire.playlistsInsert)
        let p = try e.spawn(["apply", "--auto-approve"], log: "late-\(round)")
        // Killed as soon as its first insert reached the sandbox (bounded against a hang).
        let t0 = Date()
        while e.calls(Empire.playlistsInsert) == inserts && p.isRunning && Date().timeIntervalSince(t0) < 120 {
          try await Task.sleep(for: .milliseconds(2))
        }
        let arrived = Date()
        kill(p.processIdentifier, SIGKILL)
        try await waitForExit(p)
        #expect(e.calls(Empire.playlistsInsert) == inserts + 1, "round \(round): one insert in flight when killed")

        // Restarted at once, while the sandbox still holds that insert: that create waits,
        // the channel's other work goes on.
        let restart = try await e.run("apply", "--auto-approve")
        #expect(restart.status == 0, "round \(round) restart: \(restart)")
        #expect(
          restart.stdout.contains("got no answer; the service may still execute it until"),
          "round \(round): the cut create waits: \(restart)")
        #expect(restart.stdout.contains(", 0 failed, 1 deferred"), "round \(round) restart: \(restart)")
        // The held insert lands: still one playlist of each title.
        let landing = 10.5 - Date().timeIntervalSince(arrived)
        if landing > 0 { try await Task.sleep(for: .milliseconds(Int(landing * 1000))) }
        #expect(try await e.duplicatePlaylistTitles() == [], "round \(round), after the late execution")

        // Once it settled, it is observed and adopted, not created again.
        let settle = 14.5 - Date().timeIntervalSince(arrived)
        if settle > 0 { try await Task.sleep(for: .milliseconds(Int(settle * 1000))) }
        let before = e.calls(Empire.playlistsInsert)
        let settled = try await e.run("apply", "--auto-approve")
        #expect(
          settled.status == 0 && (settled.stdout.contains(", 0 failed, 0 deferred") || settled.stdout.contains("Nothing to apply")),
          "round \(round) settled: \(settled)")
        #expect(e.calls(Empire.playlistsInsert) == before, "round \(round): adopted, no insert")
        #expect(try await e.duplicatePlaylistTitles() == [], "round \(round)")
        let plan = try await e.run("plan", "--detailed-exitcode")
        #expect(plan.status == 0, "round \(round): \(plan)")
      }
    }
  }
}
