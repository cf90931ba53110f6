import Crypto
import DriverKit
import Foundation

/// Who made a change: `apply` (the CLI) or `serve` (the service), on which host.
public struct AuditActor: Sendable, Equatable {
  public enum Role: String, Sendable { case apply, serve }
  public var role: Role
  public var host: String
  public init(role: Role, host: String) {
    self.role = role
    self.host = host
  }

  /// This machine's host name (`gethostname`), or `unknown`.
  public static func localHost() -> String {
    var buf = [CChar](repeating: 0, count: 256)
    guard gethostname(&buf, buf.count - 1) == 0 else { return "unknown" }
    let name = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return name.isEmpty ? "unknown" : name
  }
}

/// One call that changed (or may have changed) an external system, before it is chained:
/// what the engine hands the state store with the action's journal completion.
public struct AuditRecord: Sendable, Equatable {
  /// RFC 3339 UTC with milliseconds (`AuditLog.time`): the text that is hashed.
  public var time: String
  public var revision: String
  /// `Kind/name`.
  public var resource: String
  public var driver: String
  /// The action's operation: create, update or delete.
  public var action: String
  /// `service.operation` (`youtube.channels.update`).
  public var call: String
  /// The HTTP method, or "" for a driver that writes without HTTP (the config store's SQL).
  public var method: String
  /// The HTTP status of the answer; nil when none came (or no HTTP call was made).
  public var status: Int?
  /// ok, failed (an error answer), noAnswer (sent, no answer: the outcome is unknown).
  public var result: String
  public var units: Int
  public var actor: String
  public var host: String

  public init(
    time: String, revision: String, resource: String, driver: String, action: String, call: String, method: String,
    status: Int?, result: String, units: Int, actor: String, host: String
  ) {
    self.time = time
    self.revision = revision
    self.resource = resource
    self.driver = driver
    self.action = action
    self.call = call
    self.method = method
    self.status = status
    self.result = result
    self.units = units
    self.actor = actor
    self.host = host
  }
}

/// An entry of the audit log as stored: the record, its sequence number and the chain.
public struct AuditEntry: Sendable, Equatable, Codable {
  public var seq: Int64
  public var time: String
  public var revision: String
  public var resource: String
  public var driver: String
  public var action: String
  public var call: String
  public var method: String
  public var status: Int?
  public var result: String
  public var units: Int
  public var actor: String
  public var host: String
  /// The previous entry's hash (64 zeros for the first entry).
  public var prev: String
  /// SHA-256 (lowercase hex) of `AuditLog.canonical(self)`.
  public var hash: String

  public init(seq: Int64, record r: AuditRecord, prev: String) {
    self.seq = seq
    time = r.time
    revision = r.revision
    resource = r.resource
    driver = r.driver
    action = r.action
    call = r.call
    method = r.method
    status = r.status
    result = r.result
    units = r.units
    actor = r.actor
    host = r.host
    self.prev = prev
    hash = ""
    hash = AuditLog.hash(self)
  }

  public init(
    seq: Int64, time: String, revision: String, resource: String, driver: String, action: String, call: String, method: String,
    status: Int?, result: String, units: Int, actor: String, host: String, prev: String, hash: String
  ) {
    self.seq = seq
    self.time = time
    self.revision = revision
    self.resource = resource
    self.driver = driver
    self.action = action
    self.call = call
    self.method = method
    self.status = status
    self.result = result
    self.units = units
    self.actor = actor
    self.host = host
    self.prev = prev
    self.hash = hash
  }
}

/// The number of entries and the hash of the last one: what `status/summary.yaml` witnesses.
public struct AuditHead: Sendable, Equatable {
  public var entries: Int64
  public var hash: String
  public static let empty = AuditHead(entries: 0, hash: AuditLog.genesis)
  public init(entries: Int64, hash: String) {
    self.entries = entries
    self.hash = hash
  }
}

/// The hash-chained audit log (docs/audit.md): every call that changed an external system.
public enum AuditLog {
  /// The previous hash of the first entry.
  public static let genesis = String(repeating: "0", count: 64)
  static let version = "ytempire-audit-v1"

  /// The bytes an entry's hash is taken over: each field as a netstring (`<UTF-8 byte
  /// length>:<bytes>,`), in this order: the tag `ytempire-audit-v1`, seq, time, revision,
  /// resource, driver, action, call, method, status ("" when none), result, units, actor,
  /// host, prev. Integers in decimal. Unambiguous whatever bytes a field holds.
  public static func canonical(_ e: AuditEntry) -> [UInt8] {
    var out: [UInt8] = []
    for field in [
      version, String(e.seq), e.time, e.revision, e.resource, e.driver, e.action, e.call, e.method,
      e.status.map(String.init) ?? "", e.result, String(e.units), e.actor, e.host, e.prev,
    ] {
      let bytes = Array(field.utf8)
      out += Array(String(bytes.count).utf8)
      out.append(UInt8(ascii: ":"))
      out += bytes
      out.append(UInt8(ascii: ","))
    }
    return out
  }

  public static func hash(_ e: AuditEntry) -> String {
    SHA256.hash(data: canonical(e)).map { String(format: "%02x", $0) }.joined()
  }

  /// `2026-12-07T12:49:02.123Z`: fixed width, so the text orders as the times do.
  public static func time(_ d: Date) -> String {
    let ms = Int64((d.timeIntervalSince1970 * 1000).rounded(.down))
    let seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
    var t = time_t(seconds)
    let frac = Int(ms - seconds * 1000)
    var parts = tm()
    gmtime_r(&t, &parts)
    return String(
      format: "%04ld-%02ld-%02ldT%02ld:%02ld:%02ld.%03ldZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
      Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), frac)
  }

  /// Methods that change nothing.
  static let reads: Set<String> = ["GET", "HEAD", "OPTIONS"]

  /// What of an action's calls goes into the audit log:
  /// - every call with a method other than GET, HEAD or OPTIONS that was sent, whatever its
  ///   answer (an error answer or none at all may still have changed something); a call our
  ///   quota ledger refused before the wire is not;
  /// - not the OAuth token exchange (`oauth.token`): it mints an access token and changes no
  ///   object;
  /// - an action that made no HTTP call at all but ran (ok, failed or outcome unknown) is one
  ///   entry with method "": a driver that writes without HTTP (the config store's SQL).
  /// No URL, header, body or message is kept: nothing that could hold a secret.
  public static func records(
    action a: Action, calls: [CallRecord], actionResult: String, revision: String,
    actor: AuditActor, at: Date
  ) -> [AuditRecord] {
    let stamp = Self.time(at)
    func record(call: String, method: String, status: Int?, result: String, units: Int) -> AuditRecord {
      AuditRecord(
        time: stamp, revision: revision, resource: a.resource.description, driver: a.driver, action: a.operation.rawValue,
        call: call, method: method, status: status, result: result, units: units, actor: actor.role.rawValue, host: actor.host)
    }
    if calls.isEmpty {
      guard ["ok", "failed", "outcomeUnknown"].contains(actionResult) else { return [] }
      let units = actionResult == "outcomeUnknown" ? 0 : a.calls.reduce(0) { $0 &+ $1.units }
      return [
        record(
          call: a.calls.first?.name ?? a.driver, method: "", status: nil,
          result: actionResult == "outcomeUnknown" ? "noAnswer" : actionResult, units: units)
      ]
    }
    return calls.compactMap { c in
      guard c.sent, !reads.contains(c.method.uppercased()), c.call.name != "oauth.token" else { return nil }
      let result = c.ok ? "ok" : (c.status == nil ? "noAnswer" : "failed")
      return record(call: c.call.name, method: c.method.uppercased(), status: c.status, result: result, units: c.call.units)
    }
  }

  /// Why `verify` failed, naming the first bad entry.
  public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable { case edited, missing, outOfOrder }
    public var kind: Kind
    /// The first bad entry's sequence number.
    public var entry: Int64
    public var detail: String
    public var description: String {
      switch kind {
      case .edited: "audit: entry \(entry) edited: \(detail)"
      case .missing: "audit: entry \(entry) missing (sequence gap): \(detail)"
      case .outOfOrder: "audit: entry \(entry) out of order: \(detail)"
      }
    }
  }

  /// Recomputes the chain, reading it in pages in sequence order (`page(after, limit)`), and
  /// returns its head, or throws a `Failure` naming the first entry that was edited, removed
  /// or reordered. `byHash` finds the entry stored with a hash (to tell a moved entry from
  /// an edited one).
  public static func verify(
    page: (_ after: Int64, _ limit: Int) throws -> [AuditEntry],
    byHash: (String) throws -> AuditEntry?
  ) throws -> AuditHead {
    var expected: Int64 = 1
    var prev = genesis
    var after: Int64 = 0
    while true {
      let rows = try page(after, 1000)
      if rows.isEmpty { break }
      for e in rows {
        after = e.seq
        if e.seq > expected {
          throw Failure(
            kind: .missing, entry: expected,
            detail: expected == 1 ? "the log starts at entry \(e.seq)" : "the log goes from entry \(expected - 1) to entry \(e.seq)")
        }
        if hash(e) != e.hash {
          // Entry `n` moved here: it is chained after the entry stored with its `prev`.
          var n: Int64? = 1
          if e.prev != genesis { n = try byHash(e.prev).map { $0.seq + 1 } }
          if let n, n != e.seq {
            var moved = e
            moved.seq = n
            if hash(moved) == e.hash {
              throw Failure(kind: .outOfOrder, entry: e.seq, detail: "it holds entry \(n) (entries were reordered)")
            }
          }
          throw Failure(kind: .edited, entry: e.seq, detail: "its fields do not hash to its recorded hash")
        }
        if e.prev != prev && e.seq == 1 {
          throw Failure(kind: .edited, entry: 1, detail: "the first entry is not chained to the genesis hash (64 zeros)")
        }
        if e.prev != prev {
          // Intact itself, chained to another hash: the entry before it was rewritten (and re-hashed).
          throw Failure(kind: .edited, entry: e.seq - 1, detail: "entry \(e.seq) is chained to another hash than entry \(e.seq - 1) has")
        }
        prev = e.hash
        expected = e.seq + 1
      }
    }
    return AuditHead(entries: expected - 1, hash: prev)
  }
}

extension StateStore {
  /// Recomputes the audit chain (`AuditLog.verify`) over this store.
  public func verifyAudit() throws -> AuditHead {
    try AuditLog.verify(page: { try auditEntries(after: $0, limit: $1) }, byHash: { try auditEntry(hash: $0) })
  }
}
