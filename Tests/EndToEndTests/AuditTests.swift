import Foundation
import GRDB
import Sandbox
import TestSupport
import Testing

/// `ytempire audit` and `audit verify` through the built binary, on the history a real apply
/// against the sandbox leaves; then the log is tampered with directly in SQLite.
@Suite("end to end: audit log")
struct AuditLogTests {
  /// Applies the example empire from an empty state directory and checks the chain verifies.
  static func history(_ body: (Empire, DatabaseQueue) async throws -> Void) async throws {
    try await Empire.with { e in
      let applied = try await e.apply()
      #expect(applied.stdout.contains("0 failed, 0 deferred"), "\(applied)")
      let ok = try await e.run("audit", "verify")
      #expect(ok.status == 0, "\(ok)")
      let db = try DatabaseQueue(path: e.stateDir + "/state.sqlite")
      #expect(try await db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM audit") ?? 0 } >= 6)
      try await body(e, db)
    }
  }

  @Test("a real apply's history verifies; the status branch's summary witnesses its head; an idle apply adds nothing and commits nothing")
  func realHistoryVerifies() async throws {
    try await Self.history { e, db in
      let verify = try await e.run("audit", "verify")
      let count = try await db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM audit") ?? 0 }
      let head = try #require(try await db.read { try String.fetchOne($0, sql: "SELECT hash FROM audit ORDER BY seq DESC LIMIT 1") })
      #expect(verify.stdout == "audit: \(count) entries verified; head \(head)\n", "\(verify)")

      // git witnesses the head.
      let summary = try e.statusFile("status/summary.yaml")
      #expect(summary[path: "status", "audit", "entries"]?.scalarText == "\(count)")
      #expect(summary[path: "status", "audit", "head"]?.scalarText == head)

      let json = try await e.run("audit", "--output", "json")
      #expect(json.status == 0, "\(json)")
      let obj = try E2E.object(json.stdout)
      #expect(obj["total"] as? Int == count)
      let entries = try #require(obj["entries"] as? [[String: Any]])
      #expect(entries.count == min(count, 100))
      // Only writes, each with its actor, host and the applied revision.
      let revision = "main@sha1:\(try e.repo.head())"
      for x in entries {
        #expect(x["method"] as? String != "GET", "\(x)")
        #expect(x["actor"] as? String == "apply" && !(x["host"] as? String ?? "").isEmpty, "\(x)")
        #expect(x["revision"] as? String == revision, "\(x)")
      }
      let calls = Set(entries.compactMap { "\($0["method"] as? String ?? "") \($0["call"] as? String ?? "")" })
      #expect(calls.contains("PUT youtube.channels.update"), "\(calls)")
      #expect(calls.contains("POST youtube.playlists.insert"), "\(calls)")
      #expect(!calls.contains { $0.hasSuffix("oauth.token") }, "\(calls)")

      let text = try await e.run("audit", "--limit", "2")
      #expect(text.status == 0, "\(text)")
      #expect(text.stdout.contains("#\(count)  "), "\(text)")
      #expect(!text.stdout.contains("#\(count - 2)  "), "\(text)")
      #expect(text.stdout.contains("(showing the last 2 of \(count) entries; --limit shows more)"), "\(text)")
      #expect(text.stdout.hasSuffix("Head: entry \(count), \(head)\n"), "\(text)")
      let future = try await e.run("audit", "--since", "2999-01-01")
      #expect(future.status == 0 && future.stdout.hasPrefix("No audit entries since 2999-01-01T00:00:00.000Z."), "\(future)")
      let bad = try await e.run("audit", "--since", "yesterday")
      #expect(bad.status == 1 && bad.stderr.contains("--since yesterday: expected an RFC 3339 time"), "\(bad)")

      // Idle: no change planned, no entry appended, no status commit.
      let commits = try e.repo.git("rev-list", "--count", "ytempire/status")
      let idle = try await e.apply()
      #expect(idle.stdout.contains("status unchanged"), "\(idle)")
      #expect(try e.repo.git("rev-list", "--count", "ytempire/status") == commits)
      #expect(try await e.run("audit", "verify").stdout == verify.stdout)
    }
  }

  @Test("secret canary: no configured credential appears in any audit row or in what `audit` prints")
  func noSecretInTheLog() async throws {
    let tag = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    var creds = SandboxCredentials()
    creds.youtubeClientSecret = "CANARY-client-secret-\(tag)"
    creds.n8nAPIKey = "CANARY-n8n-\(tag)"
    creds.cloudflareToken = "CANARY-cloudflare-\(tag)"
    creds.vaultToken = "CANARY-vault-\(tag)"
    let canaries = [creds.youtubeClientSecret, creds.n8nAPIKey, creds.cloudflareToken, creds.vaultToken]
    try await Empire.with(credentials: creds) { e in
      #expect(canaries.allSatisfy { e.configText.contains($0) }, "the configuration holds the canaries")
      try await e.apply()
      let db = try DatabaseQueue(path: e.stateDir + "/state.sqlite")
      let rows = try await db.read { db in
        try Row.fetchAll(db, sql: "SELECT * FROM audit ORDER BY seq").map { row in
          row.columnNames.map { row[$0].map { "\($0)" } ?? "" }.joined(separator: "|")
        }
      }
      #expect(rows.count > 0)
      // Every driver that writes over HTTP left entries: the canaries went with those calls.
      let drivers = Set(try await db.read { try String.fetchAll($0, sql: "SELECT driver FROM audit") })
      #expect(drivers.isSuperset(of: ["youtube", "n8n", "cloudflare", "vault"]), "\(drivers)")
      var outputs = rows.map { ("audit row", $0) }
      for args in [["audit"], ["audit", "--output", "json"], ["audit", "verify"]] {
        let r = try await e.run(args)
        #expect(r.status == 0, "\(args): \(r)")
        outputs += [("\(args) stdout", r.stdout), ("\(args) stderr", r.stderr)]
      }
      for c in canaries {
        for (what, text) in outputs { #expect(!text.contains(c), "\(c) in \(what)") }
      }
      #expect(!outputs.contains { $0.1.contains("CANARY") })
    }
  }

  @Test("an edited entry: verify exits 1 naming it")
  func editedEntry() async throws {
    try await Self.history { e, db in
      try await db.write { try $0.execute(sql: "UPDATE audit SET units = units + 1 WHERE seq = 3") }
      let r = try await e.run("audit", "verify")
      #expect(r.status == 1, "\(r)")
      #expect(r.stderr == "audit: entry 3 edited: its fields do not hash to its recorded hash\n", "\(r)")
    }
  }

  @Test("a removed entry: verify exits 1 naming the gap")
  func removedEntry() async throws {
    try await Self.history { e, db in
      try await db.write { try $0.execute(sql: "DELETE FROM audit WHERE seq = 4") }
      let r = try await e.run("audit", "verify")
      #expect(r.status == 1, "\(r)")
      #expect(r.stderr == "audit: entry 4 missing (sequence gap): the log goes from entry 3 to entry 5\n", "\(r)")
    }
  }

  @Test("two swapped entries: verify exits 1 naming the first")
  func swappedEntries() async throws {
    try await Self.history { e, db in
      try await db.write { db in
        try db.execute(sql: "UPDATE audit SET seq = -1 WHERE seq = 2")
        try db.execute(sql: "UPDATE audit SET seq = 2 WHERE seq = 5")
        try db.execute(sql: "UPDATE audit SET seq = 5 WHERE seq = -1")
      }
      let r = try await e.run("audit", "verify")
      #expect(r.status == 1, "\(r)")
      #expect(r.stderr == "audit: entry 2 out of order: it holds entry 5 (entries were reordered)\n", "\(r)")
    }
  }
}
