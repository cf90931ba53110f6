import Foundation
import TestSupport
import Testing
import Webhooks

/// Two `serve` instances (each with its own state directory, as on two hosts) on one
/// PostgreSQL state store and one git daemon: one leads, the other stands by.
@Suite(
  "serve: leader election on a shared PostgreSQL state", .serialized,
  .enabled(if: PostgresServer.isAvailable, "PostgreSQL is not installed (make deps)"))
struct HighAvailabilityTests {
  /// Leader kills of the failover test: 2 in `make test`, 20 in `make chaos`.
  static let kills = max(1, min(Int(ProcessInfo.processInfo.environment["YTEMPIRE_HA_KILLS"] ?? "") ?? 2, 100))
  static let takeover = 6.0

  /// The served empire with `leaderElection.takeover: 6s`, and a second configuration for node b.
  static func twoNodes(_ e: Empire, _ pg: PostgresServer) throws -> (Served, String) {
    let s = try Served(e, interval: "1h")
    let text = e.configText.replacingOccurrences(
      of: "serve:\n  listen: 127.0.0.1:0\n", with: "serve:\n  leaderElection: {takeover: \(Int(takeover))s}\n  listen: 127.0.0.1:0\n")
    #expect(text != e.configText)
    try e.writeConfig(text)
    let b = text.components(separatedBy: "\n").map { $0.hasPrefix("stateDir:") ? "stateDir: \"\(e.tmp.sub("node-b-state"))\"" : $0 }
    let configB = e.tmp.sub("node-b.yaml")
    try Data(b.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: configB))
    return (s, configB)
  }

  static func readyz(_ s: Served, _ port: Int) async -> String {
    guard let (code, body) = try? await s.http(port, "GET", "/readyz"), code == 200 else { return "" }
    return body
  }

  static func webhook(_ s: Served, _ port: Int, delivery: String) async throws -> (Int, String) {
    let body = ServeTests.pushBody()
    let signed = WebhookGate.githubSignature(secret: Array(Served.webhookSecret.utf8), body: Array(body.utf8))
    return try await s.http(
      port, "POST", "/hooks/github",
      headers: ["X-Hub-Signature-256": signed, "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery], body: body)
  }

  @Test(
    "one leader; each commit applied once; kill -9 of the leader: the standby leads within the takeover bound and applies the next commit; a webhook to the standby is applied by the leader"
  )
  func failover() async throws {
    let pg = try await offload { try PostgresServer.start() }
    defer { pg.stop() }
    try await Empire.with(
      config: { SharedStateTests.shared($0, pg) },
      { e in
        let (s, configB) = try Self.twoNodes(e, pg)
        let configs = ["a": e.configPath, "b": configB]
        var nodes: [String: (child: Processes.Child, port: Int)] = [:]
        var starts = 0
        func start(_ name: String) async throws {
          starts += 1
          nodes[name] = try await s.start(log: "\(name)-\(starts)", config: configs[name])
        }
        defer { for n in nodes.values { kill(n.child.processIdentifier, SIGKILL) } }
        try await start("a")
        try await start("b")

        /// The one leader and the one standby, once both say so.
        func roles() async throws -> (leader: String, standby: String) {
          var found: (String, String)?
          try await s.eventually("one leader and one standby") {
            let a = await Self.readyz(s, nodes["a"]!.port)
            let b = await Self.readyz(s, nodes["b"]!.port)
            if a.contains("role: leader") && b.contains("role: standby") { found = ("a", "b") }
            if b.contains("role: leader") && a.contains("role: standby") { found = ("b", "a") }
            return found != nil
          }
          return found!
        }

        try await s.eventually("the first revision applied") {
          try await e.description(ofChannel: "science-simplified") == ServeTests.original
        }
        var (leader, standby) = try await roles()
        try await s.eventually("the first reconcile finished") { s.log("\(leader)-\(leader == "a" ? 1 : 2)").contains("reconciled:") }
        let page = try await s.http(nodes[standby]!.port, "GET", "/").1
        #expect(page.contains("id=\"role\"") && page.contains("standby (leader: host"), "\(page.suffix(2000))")
        let inserts = e.calls(Empire.playlistsInsert)
        var updates = e.calls(Empire.channelsUpdate)
        var takeovers: [Double] = []

        var rng = SystemRandomNumberGenerator()
        for round in 0...Self.kills {
          // A commit (a new description and a new playlist), announced to the standby only: it
          // hands the webhook to the leader.
          let want = "Change \(round), applied once."
          var text = try e.channelFile("science-simplified").replacingOccurrences(
            of: try #require(try await e.description(ofChannel: "science-simplified")), with: want)
          text = text.replacingOccurrences(
            of: "  playlists:\n",
            with: "  playlists:\n    - name: ha-round-\(round)\n      title: HA round \(round)\n      privacy: private\n")
          try s.push("round \(round)", ["channels/science-simplified.yaml": text])
          let (code, answer) = try await Self.webhook(s, nodes[standby]!.port, delivery: "round-\(round)")
          #expect(code == 202 && answer.contains("handed to the leader"), "\(answer)")
          if round < Self.kills {
            // kill -9 of the leader, at a random point of its apply (or before it began): its
            // session ends, the standby takes over and settles what was in flight.
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...1200, using: &rng)))
            let killedAt = Date()
            kill(nodes[leader]!.child.processIdentifier, SIGKILL)
            try await waitForExit(nodes[leader]!.child, timeout: 60)
            try await s.eventually("the standby leads") { await Self.readyz(s, nodes[standby]!.port).contains("role: leader") }
            takeovers.append(Date().timeIntervalSince(killedAt))
            try await start(leader)
            (leader, standby) = try await roles()
          }
          try await s.eventually("round \(round) applied") {
            let titles = try await e.playlists().values.map(\.title)
            return try await e.description(ofChannel: "science-simplified") == want && titles.contains("HA round \(round)")
          }
          // Settle, then count: one update and one playlist for one commit, across the kill.
          try await Task.sleep(for: .seconds(2))
          #expect(e.calls(Empire.channelsUpdate) == updates + 1, "round \(round): the channel update was applied more than once")
          updates = e.calls(Empire.channelsUpdate)
          #expect(try await e.duplicatePlaylistTitles() == [], "round \(round)")
          #expect(e.calls(Empire.playlistsInsert) <= inserts + round + 1, "round \(round): a playlist was inserted twice")
        }

        #expect(e.calls(Empire.playlistsInsert) == inserts + Self.kills + 1, "a takeover created a playlist again")

        // A third process (CI) plans against the shared state while the leader runs: no lock
        // wait, nothing planned for what the leader did, no units spent on what the store holds.
        let ci = e.configText.components(separatedBy: "\n").map {
          $0.hasPrefix("stateDir:") ? "stateDir: \"\(e.tmp.sub("ci-state"))\"" : $0
        }.joined(separator: "\n")
        try Data(ci.utf8).write(to: URL(fileURLWithPath: e.tmp.sub("ci.yaml")))
        let units = e.sandbox.youtubeQuotaUsed
        let plan = try await e.run(["plan", "--detailed-exitcode", "--config", e.tmp.sub("ci.yaml")], config: false)
        #expect(plan.status == 0, "\(plan)")
        #expect(e.sandbox.youtubeQuotaUsed == units)
        #expect(await Self.readyz(s, nodes[leader]!.port).contains("role: leader"))
        let sorted = takeovers.sorted()
        let median = sorted[sorted.count / 2]
        print("ha: \(takeovers.count) takeovers, median \(String(format: "%.2f", median)) s, max \(String(format: "%.2f", sorted.last!)) s")
        // Generous (a loaded machine): the bound is the takeover setting plus one election period.
        #expect(median < Self.takeover * 4, "median takeover \(median) s")
      })
  }

  @Test("PostgreSQL restarted under the leader: it steps down (nothing written without the lock) and leads again once PostgreSQL is back")
  func databaseRestart() async throws {
    let pg = try await offload { try PostgresServer.start() }
    defer { pg.stop() }
    try await Empire.with(
      config: { SharedStateTests.shared($0, pg) },
      { e in
        let (s, _) = try Self.twoNodes(e, pg)
        let (p, port) = try await s.start(log: "solo")
        defer { kill(p.processIdentifier, SIGKILL) }
        try await s.eventually("leading") { await Self.readyz(s, port).contains("role: leader") }
        try await s.eventually("the first revision applied") {
          try await e.description(ofChannel: "science-simplified") == ServeTests.original
        }
        try await offload { try pg.restart() }
        try await s.eventually("the leader noticed") { s.log("solo").contains("lost the writer lock") }
        try await s.eventually("leading again") {
          let ready = await Self.readyz(s, port)
          return s.log("solo").components(separatedBy: "leading: this instance holds").count >= 3 && ready.contains("role: leader")
        }
        let text = try e.channelFile("science-simplified").replacingOccurrences(of: ServeTests.original, with: "After the restart.")
        try s.push("after the restart", ["channels/science-simplified.yaml": text])
        let (code, _) = try await Self.webhook(s, port, delivery: "after-restart")
        #expect(code == 202)
        try await s.eventually("applied after the restart") {
          try await e.description(ofChannel: "science-simplified") == "After the restart."
        }
        #expect(try await s.stop(p) == 0)
      })
  }
}
