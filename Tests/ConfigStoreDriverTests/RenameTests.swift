import ConfigStoreDriver
import DriverKit
import EmpireModel
import Foundation
import TestSupport
import Testing

/// DESIGN A10: a resource renamed with `ytempire.io/renamed-from` keeps its config-store rows —
/// re-keyed by UPDATE in the database's own transaction, never deleted and inserted again.
@Suite("config store renames")
struct ConfigStoreRenameTests {
  /// Logs every INSERT, UPDATE and DELETE on `tables` (table, owner column) into `ops`, by the database's own triggers.
  static func logWrites(_ store: Store, _ tables: [(String, String)]) throws {
    switch store.backend {
    case .sqlite:
      var sql = "CREATE TABLE ops (tbl TEXT, op TEXT, owner TEXT);"
      for (t, owner) in tables {
        sql += """
          CREATE TRIGGER \(t)_ins AFTER INSERT ON \(t) BEGIN INSERT INTO ops VALUES ('\(t)', 'INSERT', NEW.\(owner)); END;
          CREATE TRIGGER \(t)_upd AFTER UPDATE ON \(t) BEGIN INSERT INTO ops VALUES ('\(t)', 'UPDATE', NEW.\(owner)); END;
          CREATE TRIGGER \(t)_del AFTER DELETE ON \(t) BEGIN INSERT INTO ops VALUES ('\(t)', 'DELETE', OLD.\(owner)); END;
          """
      }
      try store.exec(sql)
    case .postgres:
      try store.exec("CREATE TABLE ops (tbl text, op text, owner text)")
      for (t, owner) in tables {
        try store.exec(
          """
          CREATE FUNCTION log_\(t)() RETURNS trigger AS $$ BEGIN
            INSERT INTO ops VALUES (TG_TABLE_NAME, TG_OP, CASE WHEN TG_OP = 'DELETE' THEN OLD.\(owner) ELSE NEW.\(owner) END); RETURN NULL;
          END $$ LANGUAGE plpgsql;
          CREATE TRIGGER log_\(t) AFTER INSERT OR UPDATE OR DELETE ON \(t) FOR EACH ROW EXECUTE FUNCTION log_\(t)();
          """)
      }
    }
  }

  static func renamed(_ r: Resource, to name: String) -> Resource {
    var r = r
    r.metadata.annotations[Annotations.renamedFrom] = r.name
    r.metadata.name = name
    return r
  }

  @Test("renamed-from: a channel's row and a policy's rows are re-keyed by UPDATE; no DELETE, no INSERT", arguments: Backend.testable)
  func renameByUpdate(_ backend: Backend) async throws {
    let store = try Store(backend)
    defer { store.stop() }
    var h = Harness(try store.driver())
    try await h.converge()
    let tables = [("channels", "name"), ("retention_policies", "policy"), ("service_account_permissions", "policy")]
    try Self.logWrites(store, tables)
    let channelBefore = try store.query("SELECT youtube_channel_id, title, quota_share, labels FROM channels WHERE name = 'tech-daily'")
    let retentionBefore = try store.query("SELECT category, days FROM retention_policies WHERE policy = 'ytempire' ORDER BY category")
    #expect(channelBefore.count == 1 && !retentionBefore.isEmpty)

    let channel = Self.renamed(Fixtures.resource(.channel, "tech-daily"), to: "tech-news")
    let policy = Self.renamed(Fixtures.resource(.securityPolicy, "ytempire"), to: "ytempire-core")
    h.resources = h.resources.map { r in
      r.kind == .channel && r.name == "tech-daily" ? channel : r.kind == .securityPolicy && r.name == "ytempire" ? policy : r
    }
    // What the engine gives the driver for a rename not yet applied: the new name, the old one to find its rows by.
    let (actions, observed) = try await h.plan(renamedFrom: [ResourceID(channel): "tech-daily", ResourceID(policy): "ytempire"])
    #expect(actions.map(\.operation) == [.update, .update])
    #expect(actions.map(\.calls).map { $0.map(\.operation) } == [["update"], ["update"]])
    #expect(actions.first?.changes == [FieldChange(path: "name", old: "tech-daily", new: "tech-news")])
    #expect(actions.first?.summary == "channels row tech-news: name (renamed from tech-daily)")
    #expect(actions.last?.changes == [FieldChange(path: "policy", old: "ytempire", new: "ytempire-core")])
    try await h.apply(actions, observed: observed)

    let ops = try store.query("SELECT DISTINCT op FROM ops").map { $0[0] }
    #expect(ops == ["UPDATE"])
    #expect(try store.query("SELECT DISTINCT tbl FROM ops ORDER BY tbl").map { $0[0] } == tables.map(\.0).sorted())
    #expect(
      try store.query("SELECT youtube_channel_id, title, quota_share, labels FROM channels WHERE name = 'tech-news'") == channelBefore)
    #expect(try store.query("SELECT count(*) FROM channels WHERE name = 'tech-daily'") == [["0"]])
    #expect(
      try store.query("SELECT category, days FROM retention_policies WHERE policy = 'ytempire-core' ORDER BY category") == retentionBefore)
    #expect(try store.query("SELECT count(*) FROM retention_policies WHERE policy = 'ytempire'") == [["0"]])
    // Planned again by their new names: nothing to do.
    #expect(try await h.plan().actions.isEmpty)
    await h.driver.close()
  }
}
