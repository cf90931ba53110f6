import Foundation
import PostgresState
import TestSupport
import Testing

/// `stateStore:` on a real PostgreSQL: the shared state a service and CI plans meet in.
@Suite("end to end: shared state on PostgreSQL", .enabled(if: PostgresServer.isAvailable, "PostgreSQL is not installed (make deps)"))
struct SharedStateTests {
  static func shared(_ text: String, _ pg: PostgresServer) -> String { text + "stateStore:\n  url: \"\(pg.url)\"\n" }

  @Test(
    "apply keeps its state in PostgreSQL; a plan from a fresh runner takes no lock and spends no units; a second writer is refused naming the holder"
  )
  func sharedState() async throws {
    let pg = try await offload { try PostgresServer.start() }
    defer { pg.stop() }
    try await Empire.with(
      config: { Self.shared($0, pg) },
      { e in
        try await e.apply()
        #expect(!FileManager.default.fileExists(atPath: e.stateDir + "/state.sqlite"), "the state is not kept in SQLite")
        let owned = try await offload {
          try pg.psql("SELECT count(*) FROM ytempire_state.resources WHERE external <> '{}' AND driver = 'youtube'")
        }
        #expect((Int(owned.first?.first ?? "") ?? 0) >= 3, "\(owned)")
        #expect(try await offload { try pg.psql("SELECT count(*) > 0 FROM ytempire_state.audit") } == [["t"]])
        // No secret in any row: the access tokens ytempire obtained stayed in its process.
        let cached = try await offload { try pg.psql("SELECT key, value FROM ytempire_state.cache") }
        #expect(!cached.contains { $0.first?.hasPrefix("youtube.token.") == true }, "\(cached)")
        #expect(!cached.flatMap { $0 }.contains { $0.hasPrefix("ya29.") })
        #expect(try await e.run("plan", "--detailed-exitcode").status == 0)

        // Another ytempire holds the writer lock (the service, mid-apply).
        let holder = try PostgresStateStore(try PostgresStateSettings.parse(pg.url))
        defer { holder.close() }
        try holder.lockWriter(host: "node-a.internal", pid: 31337)
        let refused = try await e.run("apply", "--auto-approve")
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("node-a.internal") && refused.stderr.contains("pid 31337"), "\(refused)")
        #expect(!refused.stderr.contains("state.sqlite"))

        // A CI runner: its own (empty) state directory, the shared store. No lock wait, no units
        // spent on what the store holds, nothing planned for what is done.
        let runner = e.configText.components(separatedBy: "\n").map {
          $0.hasPrefix("stateDir:") ? "stateDir: \"\(e.tmp.sub("runner-state"))\"" : $0
        }.joined(separator: "\n")
        #expect(runner != e.configText)
        let runnerConfig = e.tmp.sub("runner.yaml")
        try Data(runner.utf8).write(to: URL(fileURLWithPath: runnerConfig))
        let units = e.sandbox.youtubeQuotaUsed
        let plan = try await e.run(["plan", "--detailed-exitcode", "--config", runnerConfig], config: false)
        #expect(plan.status == 0, "\(plan)")
        #expect(plan.stdout.contains("No changes"), "\(plan.stdout)")
        #expect(e.sandbox.youtubeQuotaUsed == units, "the plan spent YouTube units on observations the shared store holds")

        // Released: apply runs again, and changes nothing.
        holder.unlockWriter()
        let again = try await e.apply()
        #expect(again.stdout.contains("No changes") || again.stdout.contains("0 changed"), "\(again.stdout)")
      })
  }

  @Test("state migrate copies SQLite into an empty PostgreSQL and back; a non-empty target is refused; plans after it see no changes")
  func migrate() async throws {
    let pg = try await offload { try PostgresServer.start() }
    defer { pg.stop() }
    try await Empire.with { e in
      try await e.apply()
      let before = try await e.run("audit", "verify")
      #expect(before.status == 0)

      let m = try await e.run(["state", "migrate", "--from", "sqlite://" + e.stateDir, "--to", pg.url], config: false)
      #expect(m.status == 0, "\(m)")
      #expect(m.stdout.contains("to postgres://postgres@127.0.0.1:\(pg.port)/ytempire") && m.stdout.contains("Audit chain verified"))
      let again = try await e.run(["state", "migrate", "--from", "sqlite://" + e.stateDir, "--to", pg.url], config: false)
      #expect(again.status == 1)
      #expect(again.stderr.contains("not empty"), "\(again)")

      try e.writeConfig(Self.shared(e.configText, pg))
      let units = e.sandbox.youtubeQuotaUsed
      let plan = try await e.run("plan", "--detailed-exitcode")
      #expect(plan.status == 0, "\(plan)")
      #expect(e.sandbox.youtubeQuotaUsed == units)
      let verify = try await e.run("audit", "verify")
      #expect(verify.status == 0, "\(verify)")
      #expect(verify.stdout == before.stdout)

      let back = e.tmp.sub("state-back")
      let r = try await e.run(["state", "migrate", "--from", pg.url, "--to", "sqlite://" + back], config: false)
      #expect(r.status == 0, "\(r)")
      #expect(FileManager.default.fileExists(atPath: back + "/state.sqlite"))
      let bad = try await e.run(["state", "migrate", "--from", "mysql://x@h/db", "--to", "sqlite://" + back], config: false)
      #expect(bad.status == 1 && bad.stderr.contains("--from must be sqlite:///state/directory or postgres://"), "\(bad)")
    }
  }
}
