import DriverKit
import EmpireModel

/// The logical schema of the runtime config database, written once and rendered for SQLite
/// and PostgreSQL. Every table has the columns of its key (the resource name first), its value
/// columns, and `managed_by` / `updated_at`; ytempire reads, updates and deletes only rows whose
/// `managed_by` is `ytempire`.
enum ColumnType: Sendable, Hashable {
  case text, bool, int, double, json

  func sql(_ d: Dialect) -> String {
    switch (self, d) {
    case (.text, _): "TEXT"
    case (.bool, _): "BOOLEAN"
    case (.int, .sqlite): "INTEGER"
    case (.int, .postgres): "BIGINT"
    case (.double, .sqlite): "REAL"
    case (.double, .postgres): "DOUBLE PRECISION"
    case (.json, .sqlite): "TEXT"
    case (.json, .postgres): "JSONB"
    }
  }
}

enum Dialect: Sendable { case sqlite, postgres }

struct Column: Sendable, Hashable {
  var name: String
  var type: ColumnType
  var notNull = false
  var unique = false
}

struct Table: Sendable, Hashable {
  var name: String
  /// The column naming the resource the row belongs to (`name` or `policy`).
  var owner: String
  /// Further key columns, for resources with several rows in the table.
  var keys: [String]
  /// Every other column but `managed_by` and `updated_at`.
  var values: [Column]

  var keyColumns: [String] { [owner] + keys }
  /// True when a resource has exactly one row here (keyed by its name).
  var singleRow: Bool { keys.isEmpty }
  /// Key and value columns, in table order.
  var dataColumns: [Column] { keyColumns.map { Column(name: $0, type: .text, notNull: true) } + values }

  func createSQL(_ d: Dialect) -> String {
    var defs = dataColumns.map { c in
      "\(c.name) \(c.type.sql(d))\(c.notNull ? " NOT NULL" : "")\(c.unique ? " UNIQUE" : "")"
    }
    defs.append("managed_by TEXT")
    defs.append("updated_at \(d == .sqlite ? "TEXT" : "TIMESTAMPTZ")")
    defs.append("PRIMARY KEY (\(keyColumns.joined(separator: ", ")))")
    return "CREATE TABLE \(name) (\n  " + defs.joined(separator: ",\n  ") + "\n)"
  }
}

/// The marker of the rows ytempire owns.
let managedByValue = "ytempire"

enum Schema {
  static let channels = Table(
    name: "channels", owner: "name", keys: [],
    values: [
      Column(name: "youtube_channel_id", type: .text, notNull: true, unique: true),
      Column(name: "active", type: .bool, notNull: true),
      Column(name: "title", type: .text, notNull: true),
      Column(name: "niche", type: .text),
      Column(name: "labels", type: .json, notNull: true),
      Column(name: "quota_share", type: .double),
      Column(name: "videos_per_day", type: .int),
      Column(name: "uploads_per_hour", type: .int),
      Column(name: "rate_limit", type: .text),
      Column(name: "content", type: .json),
    ])
  static let providerChains = Table(
    name: "provider_chains", owner: "name", keys: [],
    values: [
      Column(name: "capability", type: .text, notNull: true),
      Column(name: "cache_ttl_seconds", type: .double),
      Column(name: "defaults", type: .json),
      Column(name: "audio", type: .json),
      Column(name: "providers", type: .json, notNull: true),
    ])
  static let rateLimits = Table(
    name: "rate_limits", owner: "name", keys: [],
    values: [
      Column(name: "service", type: .text, notNull: true),
      Column(name: "quota", type: .json),
      Column(name: "requests", type: .json),
      Column(name: "tokens", type: .json),
      Column(name: "characters", type: .json),
      Column(name: "concurrency", type: .int),
      Column(name: "retry", type: .json),
      Column(name: "circuit_breaker", type: .json),
      Column(name: "adaptive", type: .json),
      Column(name: "batch", type: .json),
      Column(name: "cache", type: .json),
      Column(name: "upload", type: .json),
      Column(name: "global", type: .json),
    ])
  static let retentionPolicies = Table(
    name: "retention_policies", owner: "policy", keys: ["category"],
    values: [
      Column(name: "days", type: .double),
      Column(name: "until_rotated", type: .bool, notNull: true),
    ])
  static let serviceAccountPermissions = Table(
    name: "service_account_permissions", owner: "policy", keys: ["account", "permission"], values: [])

  static let all = [channels, providerChains, rateLimits, retentionPolicies, serviceAccountPermissions]

  /// The tables a kind's resources map to, in the order they are written.
  static func tables(for kind: Kind) -> [Table] {
    switch kind {
    case .channel: [channels]
    case .providerChain: [providerChains]
    case .rateLimit: [rateLimits]
    case .securityPolicy: [retentionPolicies, serviceAccountPermissions]
    default: []
    }
  }

  static func table(named name: String) -> Table? { all.first { $0.name == name } }

  /// Versioned migrations, oldest first. Never edit one that has shipped: add the next.
  struct Migration: Sendable {
    var id: String
    var statements: @Sendable (Dialect) -> [String]
  }

  static let migrations: [Migration] = [
    Migration(id: "001_create_config_tables") { d in all.map { $0.createSQL(d) } },
    Migration(id: "002_index_managed_by") { _ in
      all.map { "CREATE INDEX \($0.name)_managed_by ON \($0.name) (managed_by)" }
    },
  ]
}
