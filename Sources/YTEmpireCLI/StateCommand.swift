import ArgumentParser
import Foundation
import Reconciler
import Workspace

/// `ytempire state migrate --from URL --to URL`.
struct StateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "state",
    abstract: "Manage the state store (owned ids, observations, the journal, quota windows, the audit log).",
    subcommands: [StateMigrateCommand.self]
  )
}

struct StateMigrateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "migrate",
    abstract: "Copy a state store from SQLite to PostgreSQL or back, into an empty target.",
    discussion: """
      Each end is sqlite:///state/directory (the stateDir of ytempire.yaml) or \
      postgres://user@host:5432/database[?sslmode=require|verify-full]; a postgres URL without a \
      password reads PGPASSWORD. Both stores' writer locks are held while copying (stop serve first). \
      The target must be empty; the copy is read back and its audit chain verified. Then point \
      ytempire.yaml at the target (stateStore:, or remove it for SQLite). See docs/ha.md.
      """
  )

  @Option(name: .long, help: "The store to copy from.")
  var from: String

  @Option(name: .long, help: "The empty store to copy into.")
  var to: String

  func run() throws {
    let cmd = self
    try runBlocking {
      let r = try StateMigration.migrate(from: cmd.from, to: cmd.to)
      var out = "Migrated the state store from \(r.from) to \(r.to):\n"
      for (table, rows) in r.counts { out += "  \(table): \(rows)\n" }
      out += "Audit chain verified: \(r.audit.entries) entries, head \(r.audit.hash).\n"
      Terminal.write(out, to: .standardOutput)
    }
  }
}
