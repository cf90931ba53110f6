import DriverKit
import Foundation
import Resilience

/// Everything a state store holds, row for row: what `ytempire state migrate` copies from one
/// store to another (SQLite ⇄ PostgreSQL). Journal sequence numbers and audit entries keep
/// their values, so the audit chain verifies after the move.
public struct StateDump: Sendable {
  public struct Journal: Sendable, Equatable {
    public var entry: JournalEntry
    /// sha256 of the action's payload when it began.
    public var payloadDigest: String
    public init(entry: JournalEntry, payloadDigest: String) {
      self.entry = entry
      self.payloadDigest = payloadDigest
    }
  }
  public struct Plan: Sendable, Equatable {
    public var digest: String
    public var revision: String
    public var createdAt: Date
    public init(digest: String, revision: String, createdAt: Date) {
      self.digest = digest
      self.revision = revision
      self.createdAt = createdAt
    }
  }
  public struct CacheValue: Sendable, Equatable {
    public var key: String
    public var value: String
    public var expires: Date?
    public init(key: String, value: String, expires: Date?) {
      self.key = key
      self.value = value
      self.expires = expires
    }
  }

  public var resources: [ResourceRecord] = []
  public var journal: [Journal] = []
  public var meta: [String: String] = [:]
  public var status: [ResourceStatusRecord] = []
  public var plans: [Plan] = []
  public var quotaWindows: [QuotaLedger.Snapshot] = []
  public var cache: [CacheValue] = []
  public var audit: [AuditEntry] = []
  public init() {}

  public var isEmpty: Bool {
    resources.isEmpty && journal.isEmpty && meta.isEmpty && status.isEmpty && plans.isEmpty && quotaWindows.isEmpty && cache.isEmpty
      && audit.isEmpty
  }

  /// Rows per table, for the messages of `state migrate`.
  public var counts: [(table: String, rows: Int)] {
    [
      ("resources", resources.count), ("journal", journal.count), ("meta", meta.count), ("status", status.count),
      ("plans", plans.count), ("quota windows", quotaWindows.count), ("cache", cache.count), ("audit", audit.count),
    ]
  }
}

/// The JSON forms both stores keep columns in (sorted keys, dates as seconds since 1970), so a
/// migrated row reads back the same.
public enum StateCoding {
  public static func json<T: Encodable>(_ v: T) -> String {
    let e = JSONEncoder()
    e.outputFormatting = [.sortedKeys]
    e.dateEncodingStrategy = .secondsSince1970
    return String(decoding: (try? e.encode(v)) ?? Data("null".utf8), as: UTF8.self)
  }

  public static func decode<T: Decodable>(_ t: T.Type, _ s: String?) -> T? {
    guard let s else { return nil }
    let d = JSONDecoder()
    d.dateDecodingStrategy = .secondsSince1970
    return try? d.decode(t, from: Data(s.utf8))
  }

  /// An observation column back to its value (depth-limited, as everything read from outside).
  public static func observation(_ s: String?) -> JSONValue? {
    s.flatMap { try? JSONValue.parse(Array($0.utf8), maxDepth: 256) }
  }
}

/// Who holds a store's writer lock, as a refused `apply` names it.
public struct LockHolder: Sendable, Equatable, CustomStringConvertible {
  public var host: String
  public var pid: Int
  public var since: Date
  public init(host: String, pid: Int, since: Date) {
    self.host = host
    self.pid = pid
    self.since = since
  }
  public var description: String { "host \(host), pid \(pid), since \(PlanRenderer.iso(since))" }
}

/// One attempt at a shared store's writer lock.
public enum LockAttempt: Sendable, Equatable {
  case acquired(epoch: Int64)
  /// Someone else holds it (nil: the holder's row could not be read).
  case heldBy(LockHolder?)
}
