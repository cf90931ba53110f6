import ArgumentParser
import EmpireModel
import Foundation
import Reconciler
import Workspace

/// `ytempire audit [--since T] [--limit N] [--output text|json]` and `ytempire audit verify`.
struct AuditCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "audit",
    abstract: "Show or verify the hash-chained audit log of every call that changed an external system.",
    discussion: "Reads the state directory of the configuration (nothing is observed or changed). See docs/audit.md.",
    subcommands: [AuditShowCommand.self, AuditVerifyCommand.self],
    defaultSubcommand: AuditShowCommand.self
  )
}

struct AuditShowCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "show",
    abstract: "Show the audit log's entries, oldest first (the default of `ytempire audit`)."
  )

  static let maxLimit = 10_000

  @Option(name: .long, help: "Reconciler configuration (default: ./ytempire.yaml).")
  var config: String?

  @Option(name: .long, help: "Only entries at or after this time: RFC 3339 (2026-12-07T12:00:00Z) or a date (2026-12-07, UTC).")
  var since: String?

  @Option(name: .long, help: "Show at most the last N entries (1…\(AuditShowCommand.maxLimit), default 100).")
  var limit: Int = 100

  @Option(name: .long, help: "Output format: text or json.")
  var output: OutputFormat = .text

  func validate() throws {
    guard (1...Self.maxLimit).contains(limit) else { throw ValidationError("--limit \(limit): expected 1…\(Self.maxLimit)") }
    if let since { _ = try Self.parseSince(since) }
  }

  /// `--since`: an RFC 3339 time (offset or Z, fractional seconds allowed) or a date (midnight UTC).
  static func parseSince(_ raw: String) throws -> Date {
    let shown = TextEscape.escape(String(raw.prefix(64))) + (raw.count > 64 ? "…" : "")
    let failure = ValidationError("--since \(shown): expected an RFC 3339 time such as 2026-12-07T12:00:00Z or a date such as 2026-12-07")
    guard raw.utf8.count <= 64 else { throw failure }
    let date = ISO8601DateFormatter()
    date.formatOptions = [.withFullDate]
    date.timeZone = TimeZone(identifier: "UTC")
    if raw.utf8.count == 10, let d = date.date(from: raw) { return d }
    let time = ISO8601DateFormatter()
    time.formatOptions = [.withInternetDateTime]
    if let d = time.date(from: raw) { return d }
    time.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let d = time.date(from: raw) { return d }
    throw failure
  }

  func run() throws {
    let cmd = self
    let sinceDate = try since.map(Self.parseSince)
    try runBlocking {
      let since = sinceDate
      let (entries, total, head) = try Workspace.open(cmd.config, lock: false).audit(since: since, last: cmd.limit)
      switch cmd.output {
      case .json:
        struct Head: Encodable {
          var entries: Int64
          var hash: String
        }
        struct Out: Encodable {
          var version = 1
          var since: String?
          /// Entries at or after `since`; `entries` holds the last `limit` of them.
          var total: Int
          var head: Head
          var entries: [AuditEntry]
        }
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let out = Out(since: since.map(AuditLog.time), total: total, head: Head(entries: head.entries, hash: head.hash), entries: entries)
        Terminal.write(String(decoding: try e.encode(out), as: UTF8.self) + "\n", to: .standardOutput)
      case .text:
        let x = TextEscape.escape
        var out = ""
        if entries.isEmpty {
          out +=
            since == nil ? "The audit log is empty: nothing has been changed yet.\n" : "No audit entries since \(AuditLog.time(since!)).\n"
        }
        for a in entries {
          let answer = a.method.isEmpty ? "-" : "\(x(a.method)) \(a.status.map(String.init) ?? "-")"
          out += "#\(a.seq)  \(a.time)  \(x(a.actor))@\(x(a.host))  \(x(a.revision))  \(x(a.resource))  \(x(a.action))  "
          out += "\(x(a.call))  \(answer)  \(x(a.result))  \(a.units) units\n"
        }
        if entries.count < total {
          out += "(showing the last \(entries.count) of \(total) entries\(since == nil ? "" : " since then"); --limit shows more)\n"
        }
        out += "Head: entry \(head.entries), \(head.hash)\n"
        Terminal.write(out, to: .standardOutput)
      }
    }
  }
}

struct AuditVerifyCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "verify",
    abstract: "Recompute the audit chain; exit 1 naming the first entry that was edited, removed or reordered.",
    discussion: "A removed last entry leaves an intact chain: compare the head with status/summary.yaml on the status branch."
  )

  @Option(name: .long, help: "Reconciler configuration (default: ./ytempire.yaml).")
  var config: String?

  func run() throws {
    let cmd = self
    try runBlocking {
      do {
        let head = try Workspace.open(cmd.config, lock: false).verifyAudit()
        Terminal.write("audit: \(head.entries) entries verified; head \(head.hash)\n", to: .standardOutput)
      } catch let f as AuditLog.Failure {
        Terminal.write(f.description + "\n", to: .standardError)
        throw ExitCode(1)
      }
    }
  }
}
