import PostgresNIO
import Reconciler

/// The state store's schema in PostgreSQL: the SQLite store's migrations, one for one (same
/// ids, same tables and columns; times as seconds since 1970 in DOUBLE PRECISION), plus the
/// writer lock's row. Applied in one transaction under an advisory lock, so two instances
/// starting together apply each once.
enum PostgresMigrations {
  static let all: [(id: String, sql: [String])] = [
    (
      "v1",
      [
        """
        CREATE TABLE resources (
          driver TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
          applied_digest TEXT, applied_revision TEXT,
          annotations TEXT NOT NULL DEFAULT '{}', external TEXT NOT NULL DEFAULT '{}',
          observed TEXT, observed_at DOUBLE PRECISION,
          PRIMARY KEY (driver, kind, name))
        """,
        """
        CREATE TABLE journal (
          seq BIGSERIAL PRIMARY KEY, run TEXT NOT NULL, action_id TEXT NOT NULL,
          driver TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, operation TEXT NOT NULL,
          payload_digest TEXT NOT NULL, started_at DOUBLE PRECISION NOT NULL, finished_at DOUBLE PRECISION, result TEXT, message TEXT)
        """,
        "CREATE INDEX journal_open ON journal(result) WHERE result IS NULL",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE status (kind TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, name))",
        "CREATE TABLE plans (digest TEXT PRIMARY KEY, revision TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL)",
        """
        CREATE TABLE quota_windows (
          service TEXT PRIMARY KEY, window_start DOUBLE PRECISION NOT NULL, spent BIGINT NOT NULL, per_channel TEXT NOT NULL)
        """,
        "CREATE TABLE cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires DOUBLE PRECISION)",
      ]
    ),
    (
      "v2-quota-channels",
      [
        "CREATE TABLE quota_channels (service TEXT NOT NULL, channel TEXT NOT NULL, spent BIGINT NOT NULL, PRIMARY KEY (service, channel))"
      ]
    ),
    ("v3-journal-settle", ["ALTER TABLE journal ADD COLUMN settle_by DOUBLE PRECISION"]),
    (
      "v4-audit",
      [
        """
        CREATE TABLE audit (
          seq BIGINT PRIMARY KEY, time TEXT NOT NULL, revision TEXT NOT NULL, resource TEXT NOT NULL,
          driver TEXT NOT NULL, action TEXT NOT NULL, call TEXT NOT NULL, method TEXT NOT NULL, status BIGINT,
          result TEXT NOT NULL, units BIGINT NOT NULL, actor TEXT NOT NULL, host TEXT NOT NULL,
          prev TEXT NOT NULL, hash TEXT NOT NULL)
        """,
        "CREATE INDEX audit_hash ON audit(hash)",
        "CREATE INDEX audit_time ON audit(time)",
      ]
    ),
    (
      "pg1-writer-lock",
      [
        // Who holds the advisory lock, and its epoch: a takeover increments it, and every
        // journal write of the holder checks it (fencing).
        """
        CREATE TABLE writer_lock (
          id INTEGER PRIMARY KEY CHECK (id = 1), epoch BIGINT NOT NULL, host TEXT NOT NULL, pid BIGINT NOT NULL,
          since DOUBLE PRECISION NOT NULL, backend_pid INTEGER NOT NULL)
        """,
        "INSERT INTO writer_lock (id, epoch, host, pid, since, backend_pid) VALUES (1, 0, '', 0, 0, 0)",
      ]
    ),
  ]

  static func migrate(_ c: Session.Conn, schema: String) throws {
    try c.exec("BEGIN")
    do {
      // A transaction-scoped advisory lock (not the writer lock): instances starting together
      // wait here, and each migration runs once.
      try c.query("SELECT pg_advisory_xact_lock(\(Session.lockKey + 1))")
      try c.exec("CREATE SCHEMA IF NOT EXISTS \(schema)")
      try c.exec("SET search_path TO \(schema)")
      try c.exec("CREATE TABLE IF NOT EXISTS migrations (id TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
      let applied = Set(try c.query("SELECT id FROM migrations").map { try $0.decode(String.self) })
      for m in all where !applied.contains(m.id) {
        for s in m.sql { try c.exec(s) }
        try c.query("INSERT INTO migrations (id) VALUES (\(m.id))")
      }
      try c.exec("COMMIT")
    } catch {
      try? c.exec("ROLLBACK")
      throw error
    }
  }
}
