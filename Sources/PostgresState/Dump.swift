import DriverKit
import EmpireModel
import Foundation
import PostgresNIO
import Reconciler
import Resilience

extension PostgresStateStore {
  public func dump() throws -> StateDump {
    try session.transaction { c in
      // One snapshot of every table.
      try c.exec("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
      var d = StateDump()
      d.resources = try c.query("SELECT * FROM resources ORDER BY driver, kind, name").compactMap(Self.record)
      d.journal = try c.query("SELECT * FROM journal ORDER BY seq").compactMap { r in
        try Self.entry(r).map {
          StateDump.Journal(entry: $0, payloadDigest: try r.makeRandomAccess()["payload_digest"].decode(String.self))
        }
      }
      for r in try c.query("SELECT key, value FROM meta ORDER BY key") {
        let (k, v) = try r.decode((String, String).self)
        d.meta[k] = v
      }
      d.status = try c.query("SELECT body FROM status ORDER BY kind, name").compactMap {
        StateCoding.decode(ResourceStatusRecord.self, try $0.decode(String.self))
      }
      d.plans = try c.query("SELECT digest, revision, created_at FROM plans ORDER BY created_at, digest").map {
        let (digest, revision, at) = try $0.decode((String, String, Double).self)
        return StateDump.Plan(digest: digest, revision: revision, createdAt: Date(timeIntervalSince1970: at))
      }
      for r in try c.query("SELECT service FROM quota_windows ORDER BY service") {
        if let w = try Self.loadWindow(c, service: try r.decode(String.self)) { d.quotaWindows.append(w) }
      }
      d.cache = try c.query("SELECT key, value, expires FROM cache ORDER BY key").map {
        let (k, v, e) = try $0.decode((String, String, Double?).self)
        return StateDump.CacheValue(key: k, value: v, expires: e.map { Date(timeIntervalSince1970: $0) })
      }
      d.audit = try c.query("SELECT * FROM audit ORDER BY seq").map(Self.auditEntry)
      return d
    }
  }

  public func restore(_ d: StateDump) throws {
    defer {
      cacheRowsChanged(nil)
      session.forgetAuditHead()
    }
    try session.transaction { c in
      try c.exec("LOCK TABLE resources, journal, meta, status, plans, quota_windows, quota_channels, cache, audit IN EXCLUSIVE MODE")
      for table in ["resources", "journal", "meta", "status", "plans", "quota_windows", "cache", "audit"] {
        if !(try c.query(PostgresQuery(unsafeSQL: "SELECT 1 FROM \(table) LIMIT 1")).isEmpty) {
          throw StateStoreError("the target state store is not empty (its \(table) table has rows); migrate into an empty one")
        }
      }
      for r in d.resources {
        try c.query(
          """
          INSERT INTO resources (driver, kind, name, applied_digest, applied_revision, annotations, external, observed, observed_at)
          VALUES (\(r.driver), \(r.id.kind.rawValue), \(r.id.name), \(r.appliedDigest), \(r.appliedRevision),
            \(StateCoding.json(r.annotations)), \(StateCoding.json(r.external)), \(r.observed?.canonicalString), \(r.observedAt?.timeIntervalSince1970))
          """)
      }
      for j in d.journal {
        let e = j.entry
        try c.query(
          """
          INSERT INTO journal (seq, run, action_id, driver, kind, name, operation, payload_digest, started_at, finished_at, result, message, settle_by)
          VALUES (\(e.seq), \(e.run), \(e.actionID), \(e.driver), \(e.resource.kind.rawValue), \(e.resource.name), \(e.operation),
            \(j.payloadDigest), \(e.startedAt.timeIntervalSince1970), \(e.finishedAt?.timeIntervalSince1970), \(e.result), \(e.message),
            \(e.settleBy?.timeIntervalSince1970))
          """)
      }
      // The journal's sequence continues after the copied entries.
      try c.exec(
        "SELECT setval(pg_get_serial_sequence('journal', 'seq'), GREATEST((SELECT MAX(seq) FROM journal), 1), (SELECT COUNT(*) > 0 FROM journal))"
      )
      for (k, v) in d.meta.sorted(by: { $0.key < $1.key }) { try c.query("INSERT INTO meta (key, value) VALUES (\(k), \(v))") }
      for s in d.status {
        try c.query("INSERT INTO status (kind, name, body) VALUES (\(s.id.kind.rawValue), \(s.id.name), \(StateCoding.json(s)))")
      }
      for p in d.plans {
        try c.query(
          "INSERT INTO plans (digest, revision, created_at) VALUES (\(p.digest), \(p.revision), \(p.createdAt.timeIntervalSince1970))")
      }
      for w in d.quotaWindows {
        try c.query(
          "INSERT INTO quota_windows (service, window_start, spent, per_channel) VALUES (\(w.service), \(w.windowStart.timeIntervalSince1970), \(w.spent), '{}')"
        )
        for (ch, n) in w.perChannel.sorted(by: { $0.key < $1.key }) {
          try c.query("INSERT INTO quota_channels (service, channel, spent) VALUES (\(w.service), \(ch), \(n))")
        }
      }
      for v in d.cache where !CachedSecrets.isSecret(v.key) {
        try c.query("INSERT INTO cache (key, value, expires) VALUES (\(v.key), \(v.value), \(v.expires?.timeIntervalSince1970))")
      }
      for e in d.audit { try Self.insertAudit(c, e) }
    }
  }
}
