import DriverKit
import Foundation
import GRDB
import Resilience

extension SQLiteStateStore {
  public func dump() throws -> StateDump {
    try db.read { db in
      var d = StateDump()
      d.resources = try Row.fetchAll(db, sql: "SELECT * FROM resources ORDER BY driver, kind, name").compactMap(Self.record)
      d.journal = try Row.fetchAll(db, sql: "SELECT * FROM journal ORDER BY seq").compactMap { r in
        Self.entry(r).map { StateDump.Journal(entry: $0, payloadDigest: r["payload_digest"]) }
      }
      for r in try Row.fetchAll(db, sql: "SELECT key, value FROM meta ORDER BY key") { d.meta[r["key"]] = r["value"] }
      d.status = try String.fetchAll(db, sql: "SELECT body FROM status ORDER BY kind, name").compactMap {
        StateCoding.decode(ResourceStatusRecord.self, $0)
      }
      d.plans = try Row.fetchAll(db, sql: "SELECT * FROM plans ORDER BY created_at, digest").map {
        StateDump.Plan(digest: $0["digest"], revision: $0["revision"], createdAt: Date(timeIntervalSince1970: $0["created_at"]))
      }
      for service in try String.fetchAll(db, sql: "SELECT service FROM quota_windows ORDER BY service") {
        if let w = try loadWindow(db, service: service) { d.quotaWindows.append(w) }
      }
      d.cache = try Row.fetchAll(db, sql: "SELECT * FROM cache ORDER BY key").map {
        let e: Double? = $0["expires"]
        return StateDump.CacheValue(key: $0["key"], value: $0["value"], expires: e.map { Date(timeIntervalSince1970: $0) })
      }
      d.audit = try Row.fetchAll(db, sql: "SELECT * FROM audit ORDER BY seq").map(Self.auditEntry)
      return d
    }
  }

  public func restore(_ d: StateDump) throws {
    try db.write { db in
      for table in ["resources", "journal", "meta", "status", "plans", "quota_windows", "cache", "audit"] {
        if try Bool.fetchOne(db, sql: "SELECT 1 FROM \(table) LIMIT 1") ?? false {
          throw StateStoreError("the target state store is not empty (its \(table) table has rows); migrate into an empty one")
        }
      }
      for r in d.resources {
        try db.execute(
          sql: """
            INSERT INTO resources (driver, kind, name, applied_digest, applied_revision, annotations, external, observed, observed_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
          arguments: [
            r.driver, r.id.kind.rawValue, r.id.name, r.appliedDigest, r.appliedRevision, StateCoding.json(r.annotations),
            StateCoding.json(r.external), r.observed?.canonicalString, r.observedAt?.timeIntervalSince1970,
          ])
      }
      for j in d.journal {
        let e = j.entry
        try db.execute(
          sql: """
            INSERT INTO journal (seq, run, action_id, driver, kind, name, operation, payload_digest, started_at, finished_at, result, message, settle_by)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
          arguments: [
            e.seq, e.run, e.actionID, e.driver, e.resource.kind.rawValue, e.resource.name, e.operation, j.payloadDigest,
            e.startedAt.timeIntervalSince1970, e.finishedAt?.timeIntervalSince1970, e.result, e.message, e.settleBy?.timeIntervalSince1970,
          ])
      }
      for (k, v) in d.meta.sorted(by: { $0.key < $1.key }) {
        try db.execute(sql: "INSERT INTO meta (key, value) VALUES (?, ?)", arguments: [k, v])
      }
      for s in d.status {
        try db.execute(
          sql: "INSERT INTO status (kind, name, body) VALUES (?, ?, ?)", arguments: [s.id.kind.rawValue, s.id.name, StateCoding.json(s)])
      }
      for p in d.plans {
        try db.execute(
          sql: "INSERT INTO plans (digest, revision, created_at) VALUES (?, ?, ?)",
          arguments: [p.digest, p.revision, p.createdAt.timeIntervalSince1970])
      }
      for w in d.quotaWindows {
        try db.execute(
          sql: "INSERT INTO quota_windows (service, window_start, spent, per_channel) VALUES (?, ?, ?, '{}')",
          arguments: [w.service, w.windowStart.timeIntervalSince1970, w.spent])
        for (c, n) in w.perChannel.sorted(by: { $0.key < $1.key }) {
          try db.execute(sql: "INSERT INTO quota_channels (service, channel, spent) VALUES (?, ?, ?)", arguments: [w.service, c, n])
        }
      }
      for c in d.cache {
        try db.execute(
          sql: "INSERT INTO cache (key, value, expires) VALUES (?, ?, ?)", arguments: [c.key, c.value, c.expires?.timeIntervalSince1970])
      }
      for e in d.audit { try Self.insertAudit(db, e) }
    }
  }
}
