import ConfigStoreDriver
import DriverKit
import EmpireModel
import Foundation
import TestSupport
import Testing

@Suite("config store driver")
struct ConfigStoreDriverTests {
  static let activeChannelIDs: [String] = Fixtures.example.compactMap { r in
    r.channel.flatMap { $0.active ? $0.youtube.channelId : nil }
  }.sorted()

  @Test("PostgreSQL is installed", .enabled(if: PostgresServer.isAvailable, Comment(rawValue: PostgresServer.unavailableReason ?? "")))
  func postgresAvailable() throws {
    let s = try PostgresServer.start()
    defer { s.stop() }
    #expect(try s.psql("SELECT 1 + 1") == [["2"]])
    #expect(s.url.hasPrefix("postgres://postgres@127.0.0.1:"))
  }

  @Test("migrations run from empty, and re-opening applies nothing twice", arguments: Backend.testable)
  func migrations(_ backend: Backend) async throws {
    let store = try Store(backend)
    defer { store.stop() }
    let d1 = try store.driver()
    #expect(try await d1.migrate() == ConfigStoreDriver.migrationIDs)
    await d1.close()
    let d2 = try store.driver()
    #expect(try await d2.migrate() == ConfigStoreDriver.migrationIDs)
    #expect(try await d2.migrate() == ConfigStoreDriver.migrationIDs)
    await d2.close()
    // Closed, then used again: it reopens.
    #expect(try await d2.observe(Harness(d2).targets(), context: Harness(d2).context).count == Harness(d2).ours.count)
    await d2.close()
    let recorded =
      backend == .sqlite
      ? try store.query("SELECT identifier FROM grdb_migrations ORDER BY identifier")
      : try store.query("SELECT id FROM ytempire_schema_migrations ORDER BY id")
    #expect(recorded.map { $0[0] } == ConfigStoreDriver.migrationIDs)
    for t in ["channels", "provider_chains", "rate_limits", "retention_policies", "service_account_permissions"] {
      #expect(try store.query("SELECT count(*) FROM \(t)") == [["0"]], "\(t)")
    }
  }

  @Test("the example empire: rows created, no perpetual diff, the runtime's query finds the active channels", arguments: Backend.testable)
  func exampleEmpire(_ backend: Backend) async throws {
    let store = try Store(backend)
    defer { store.stop() }
    let driver = try store.driver()
    let h = Harness(driver)

    let calls = driver.observationCalls(h.targets(), pricing: h.pricing)
    #expect(calls.count == 5)
    #expect(calls.allSatisfy { $0.service == "configStore" && $0.operation == "select" && $0.units == 0 })

    let (actions, observed) = try await h.plan()
    #expect(actions.count == h.ours.count)
    #expect(actions.allSatisfy { $0.operation == .create && $0.key == "row" && $0.driver == "configStore" })
    #expect(observed.values.allSatisfy { $0 == .null })
    let after = try await h.apply(actions, observed: observed)
    // What apply reports is the state the next observation sees.
    for r in h.ours {
      let id = ResourceID(r)
      let d = DiffInput(id: id, desired: driver.desired(r, in: h.index), observed: after[id] ?? .null, external: [:], pricing: h.pricing)
      #expect(driver.diff(d).isEmpty, "\(id) after apply")
    }
    await driver.close()

    // A new process: a fresh connection, the same rows, nothing to do.
    let again = Harness(try store.driver())
    let (second, _) = try await again.plan()
    #expect(second.isEmpty, "second plan: \(second.map(\.summary))")
    await again.driver.close()

    // Observation is batched: one SELECT per table for all 17 resources (PostgreSQL logs them).
    if let server = store.server {
      try server.psql("ALTER SYSTEM SET log_statement = 'all'")
      try server.psql("SELECT pg_reload_conf()")
      try await Task.sleep(for: .milliseconds(300))
      let log = server.directory + "/server.log"
      let before = try String(contentsOfFile: log, encoding: .utf8).count
      let third = Harness(try store.driver())
      _ = try await third.driver.observe(third.targets(), context: third.context)
      await third.driver.close()
      let text = String(try String(contentsOfFile: log, encoding: .utf8).dropFirst(before))
      for t in ["channels", "provider_chains", "rate_limits", "retention_policies", "service_account_permissions"] {
        let selects = text.components(separatedBy: "\n").filter {
          $0.contains("LOG:") && $0.contains(": SELECT ") && $0.contains(" FROM \(t) WHERE")
        }
        #expect(selects.count == 1, "\(t): \(selects)")
      }
    }

    #expect(
      try store.query("SELECT youtube_channel_id FROM channels WHERE active = true ORDER BY youtube_channel_id").map { $0[0] }
        == Self.activeChannelIDs)
    #expect(try store.query("SELECT count(*) FROM channels WHERE managed_by = 'ytempire'") == [["3"]])
    #expect(
      try store.query("SELECT count(*) FROM rate_limits WHERE managed_by = 'ytempire'") == [["\(h.ours.count { $0.kind == .rateLimit })"]])
    #expect(
      try store.query("SELECT title, quota_share, videos_per_day, rate_limit FROM channels WHERE name = 'tech-daily'")
        == [["Tech Daily", "0.4", "5", "youtube-api"]])
    #expect(
      try store.query("SELECT days FROM retention_policies WHERE policy = 'ytempire' AND category = 'analytics'").first?.first.flatMap(
        Double.init) == 365)
    #expect(
      try store.query("SELECT count(*) FROM retention_policies WHERE category = 'api_keys' AND until_rotated AND days IS NULL") == [["1"]])
    #expect(
      try store.query("SELECT permission FROM service_account_permissions WHERE account = 'youtube-publisher' ORDER BY permission").map {
        $0[0]
      }
        == ["analytics.read", "videos.update", "videos.upload"])
    // JSON columns hold JSON the runtime can read: the LLM chain's providers in order.
    let providers = try #require(store.query("SELECT providers FROM provider_chains WHERE name = 'llm'").first?.first)
    let parsed = try JSONValue.parse(Array(providers.utf8))
    #expect(parsed.array?.compactMap { $0["name"]?.string } == ["openai", "anthropic", "cohere", "local-llm"])
    #expect(parsed.array?.first?["weight"]?.double == 1)
    #expect(parsed.array?.last?["cache_ttl_seconds"]?.double == 1800)
    let content = try #require(store.query("SELECT content FROM channels WHERE name = 'tech-daily'").first?.first)
    #expect(try JSONValue.parse(Array(content.utf8))["duration_seconds"]?.int == 600)
  }

  @Test("a changed field is exactly one update with the field-level change", arguments: Backend.testable)
  func changedField(_ backend: Backend) async throws {
    let store = try Store(backend)
    defer { store.stop() }
    var h = Harness(try store.driver())
    try await h.converge()

    let edited = Fixtures.resource(.channel, "tech-daily").withChannel {
      $0.branding.title = "Tech Daily Plus"
      $0.limits?.quotaShare = 0.35
    }
    h.resources = Fixtures.replacing(edited, in: h.resources)
    let (actions, observed) = try await h.plan()
    #expect(actions.count == 1)
    let a = try #require(actions.first)
    #expect(a.operation == .update)
    #expect(a.resource == ResourceID(.channel, "tech-daily"))
    #expect(a.key == "row")
    #expect(
      a.changes == [
        FieldChange(path: "quota_share", old: .double(0.4), new: .double(0.35)),
        FieldChange(path: "title", old: "Tech Daily", new: "Tech Daily Plus"),
      ])
    try await h.apply(actions, observed: observed)
    #expect(try store.query("SELECT title, quota_share FROM channels WHERE name = 'tech-daily'") == [["Tech Daily Plus", "0.35"]])
    #expect(try await h.plan().actions.isEmpty)

    // A nested JSON field: only that path changes.
    let chain = Fixtures.resource(.providerChain, "llm")
    var spec = try #require(chain.providerChain)
    spec.providers[1].weight = 0.75
    var edited2 = chain
    edited2.spec = .providerChain(spec)
    h.resources = Fixtures.replacing(edited2, in: h.resources)
    let (actions2, _) = try await h.plan()
    #expect(actions2.map(\.operation) == [.update])
    #expect(actions2.first?.changes.map(\.path) == ["providers"])
    await h.driver.close()
  }

  @Test("a removed resource deletes its owned rows only; unowned rows survive every apply", arguments: Backend.testable)
  func removedResource(_ backend: Backend) async throws {
    let store = try Store(backend)
    defer { store.stop() }
    let driver = try store.driver()
    try await driver.migrate()
    // Rows somebody inserted by hand: no managed_by, or another owner's.
    try store.exec(
      """
      INSERT INTO channels (name, youtube_channel_id, active, title, labels) VALUES ('hand-made', 'UCaaaaaaaaaaaaaaaaaaaaaa', true, 'Hand Made', '{}');
      INSERT INTO retention_policies (policy, category, days, until_rotated, managed_by) VALUES ('ytempire', 'backups', 14, false, 'ops');
      INSERT INTO service_account_permissions (policy, account, permission) VALUES ('ytempire', 'youtube-publisher', 'comments.moderate');
      """)
    var h = Harness(driver)
    try await h.converge()
    #expect(
      try store.query("SELECT youtube_channel_id FROM channels WHERE active = true ORDER BY youtube_channel_id").map { $0[0] }
        == (Self.activeChannelIDs + ["UCaaaaaaaaaaaaaaaaaaaaaa"]).sorted())

    // tech-daily and the security policy leave the repository.
    let gone = [ResourceID(.channel, "tech-daily"), ResourceID(.securityPolicy, "ytempire")]
    h.resources = h.resources.filter { !gone.contains(ResourceID($0)) }
    let (actions, observed) = try await h.plan(removed: gone)
    #expect(actions.map(\.operation) == [.delete, .delete])
    #expect(Set(actions.map(\.resource)) == Set(gone))
    try await h.apply(actions, observed: observed)

    #expect(
      try store.query("SELECT name FROM channels ORDER BY name").map { $0[0] } == ["finance-focus", "hand-made", "science-simplified"])
    #expect(try store.query("SELECT category, managed_by FROM retention_policies") == [["backups", "ops"]])
    #expect(
      try store.query("SELECT account, permission, managed_by FROM service_account_permissions") == [
        ["youtube-publisher", "comments.moderate", ""]
      ])
    #expect(try store.query("SELECT title FROM channels WHERE name = 'hand-made'") == [["Hand Made"]])
    #expect(try await h.plan(removed: gone).actions.isEmpty)
    await driver.close()
  }

  @Test("a name held by an unowned row is a conflict: planned as such, refused on apply, the row untouched", arguments: Backend.testable)
  func unownedCollision(_ backend: Backend) async throws {
    let store = try Store(backend)
    defer { store.stop() }
    let driver = try store.driver()
    try await driver.migrate()
    try store.exec(
      "INSERT INTO channels (name, youtube_channel_id, active, title, labels) VALUES ('tech-daily', 'UCbbbbbbbbbbbbbbbbbbbbbb', false, 'Not Ours', '{}')"
    )
    let h = Harness(driver)
    let (actions, observed) = try await h.plan()
    let conflict = try #require(actions.first { $0.resource == ResourceID(.channel, "tech-daily") })
    #expect(conflict.operation == .create)
    #expect(conflict.summary.contains("CONFLICT"))
    let refused = await #expect(throws: ConfigStoreError.self) { try await h.apply([conflict], observed: observed) }
    #expect(
      refused?.message.contains("channels row 'tech-daily' exists and is not managed by ytempire") == true, "\(String(describing: refused))"
    )
    #expect(
      try store.query("SELECT title, youtube_channel_id, managed_by FROM channels WHERE name = 'tech-daily'")
        == [["Not Ours", "UCbbbbbbbbbbbbbbbbbbbbbb", ""]])

    // Everything else converges; the conflict stays planned and refused.
    try await h.apply(actions.filter { $0.resource != conflict.resource }, observed: observed)
    let (again, _) = try await h.plan()
    #expect(again.map(\.resource) == [conflict.resource])

    // A row ytempire wrote and somebody then took over is no longer ytempire's either.
    try store.exec("UPDATE channels SET managed_by = 'ops', title = 'Taken Over' WHERE name = 'finance-focus'")
    let finance = Fixtures.resource(.channel, "finance-focus").withChannel { $0.branding.title = "Finance Focus 2" }
    var h2 = Harness(driver)
    h2.resources = Fixtures.replacing(finance, in: h2.resources)
    let (actions2, observed2) = try await h2.plan()
    let takeover = try #require(actions2.first { $0.resource == ResourceID(.channel, "finance-focus") })
    #expect(takeover.summary.contains("CONFLICT"))
    await #expect(throws: ConfigStoreError.self) { try await h2.apply([takeover], observed: observed2) }
    #expect(try store.query("SELECT title, managed_by FROM channels WHERE name = 'finance-focus'") == [["Taken Over", "ops"]])
    // Removing it from the repository does not delete it.
    h2.resources = h2.resources.filter { $0.name != "finance-focus" }
    let (actions3, _) = try await h2.plan(removed: [ResourceID(.channel, "finance-focus")])
    #expect(!actions3.contains { $0.resource == ResourceID(.channel, "finance-focus") })
    await driver.close()
  }

  @Test("one transaction per resource: a failure in the middle leaves none of its rows changed", arguments: Backend.testable)
  func transactionPerResource(_ backend: Backend) async throws {
    let store = try Store(backend)
    defer { store.stop() }
    let driver = try store.driver()
    try await driver.migrate()
    // The policy's retention rows are written first, its permission rows after: reject one of those.
    let inject: String
    let remove: String
    switch backend {
    case .sqlite:
      inject =
        "CREATE TRIGGER injected BEFORE INSERT ON service_account_permissions WHEN NEW.permission = 'storage.write' BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
      remove = "DROP TRIGGER injected"
    case .postgres:
      inject = "ALTER TABLE service_account_permissions ADD CONSTRAINT injected CHECK (permission <> 'storage.write')"
      remove = "ALTER TABLE service_account_permissions DROP CONSTRAINT injected"
    }
    try store.exec(inject)
    let policy = ResourceID(.securityPolicy, "ytempire")
    var h = Harness(driver)
    let (actions, observed) = try await h.plan()
    let create = try #require(actions.first { $0.resource == policy })
    await #expect(throws: ConfigStoreError.self) { try await h.apply([create], observed: observed) }
    #expect(try store.query("SELECT count(*) FROM retention_policies") == [["0"]])
    #expect(try store.query("SELECT count(*) FROM service_account_permissions") == [["0"]])

    try store.exec(remove)
    try await h.converge()
    #expect(try store.query("SELECT count(*) FROM service_account_permissions") == [["5"]])

    // An update that changes a retention row first and then fails on a permission row.
    try store.exec("DELETE FROM service_account_permissions WHERE permission = 'storage.write'")
    try store.exec(inject)
    let edited = Fixtures.resource(.securityPolicy, "ytempire").withPolicy { $0.retention?.logs = .seconds(31 * 86_400) }
    h.resources = Fixtures.replacing(edited, in: h.resources)
    let (actions2, observed2) = try await h.plan()
    let update = try #require(actions2.first { $0.resource == policy })
    #expect(update.operation == .update)
    #expect(
      Set(update.changes.map(\.path)) == ["retention_policies.logs.days", "service_account_permissions.content-generator/storage.write"])
    await #expect(throws: ConfigStoreError.self) { try await h.apply([update], observed: observed2) }
    #expect(try store.query("SELECT days FROM retention_policies WHERE category = 'logs'").first?.first.flatMap(Double.init) == 30)

    // A unique constraint inside one channel row: nothing of the channel changes.
    let clash = Fixtures.resource(.channel, "tech-daily").withChannel {
      $0.youtube.channelId = Fixtures.resource(.channel, "finance-focus").channel!.youtube.channelId
      $0.branding.title = "Clash"
    }
    h.resources = Fixtures.replacing(clash, in: Fixtures.example)
    let (actions3, observed3) = try await h.plan()
    let clashing = try #require(actions3.first { $0.resource == ResourceID(.channel, "tech-daily") })
    let unique = await #expect(throws: ConfigStoreError.self) { try await h.apply([clashing], observed: observed3) }
    #expect(unique?.message.lowercased().contains("unique") == true, "\(String(describing: unique))")
    #expect(try store.query("SELECT title FROM channels WHERE name = 'tech-daily'") == [["Tech Daily"]])
    await driver.close()
  }

  @Test("no secret value reaches a row, a plan or a message; credential names do", arguments: Backend.testable)
  func noSecrets(_ backend: Backend) async throws {
    let store = try Store(backend)
    defer { store.stop() }
    let canary = "CANARY-7d41-secret-value"
    // PostgreSQL: the password is resolved to connect (the test cluster trusts, so any works).
    let driver = try store.driver(password: backend == .postgres ? LazySecret.literal("integrations.configStore.password", canary) : nil)
    var h = Harness(driver)
    h.canary = canary
    let (actions, observed) = try await h.plan()
    try await h.apply(actions, observed: observed)
    var everything = ""
    for t in ["channels", "provider_chains", "rate_limits", "retention_policies", "service_account_permissions"] {
      everything += try store.dump(t).map { $0.joined(separator: "|") }.joined(separator: "\n")
    }
    #expect(!everything.contains(canary))
    #expect(everything.contains("\"credentials\":\"openai\"") || everything.contains("\"credentials\": \"openai\""))
    let planned = actions.map { "\($0.summary) \($0.payload.canonicalString) \($0.changes)" }.joined()
    #expect(!planned.contains(canary))
    let desired = h.ours.map { driver.desired($0, in: h.index).canonicalString }.joined()
    #expect(!desired.contains(canary))
    await driver.close()

    // A password in the URL is never shown.
    let port = try Processes.freePort()
    let withPassword = try ConfigStoreDriver(url: "postgres://ytempire:\(canary)@127.0.0.1:\(port)/runtime")
    #expect(!"\(withPassword.location)".contains(canary))
    let unreachable = await #expect(throws: (any Error).self) { try await withPassword.migrate() }
    #expect(!"\(String(describing: unreachable))".contains(canary))
    #expect("\(String(describing: unreachable))".contains("127.0.0.1"))
    #expect(throws: ConfigStoreError.self) {
      try ConfigStoreDriver(url: "postgres://ytempire:\(canary)@db/runtime", password: .literal("p", "q"))
    }
    let unknown = #expect(throws: ConfigStoreError.self) { try ConfigStoreDriver(url: "mysql://ytempire:\(canary)@db/runtime") }
    #expect(unknown.map { !$0.message.contains(canary) } == true)
  }

  @Test("URLs: sqlite files and postgres servers, checked before anything opens")
  func urls() throws {
    #expect(try ConfigStoreLocation.parse("sqlite:///var/lib/ytempire/runtime.sqlite") == .sqlite(path: "/var/lib/ytempire/runtime.sqlite"))
    let cwd = FileManager.default.currentDirectoryPath
    #expect(try ConfigStoreLocation.parse("sqlite://state/runtime.sqlite") == .sqlite(path: cwd + "/state/runtime.sqlite"))
    let pg = try ConfigStoreLocation.parse("postgres://app%40x:p%3Ass@db.internal:6543/runtime?sslmode=require")
    #expect(pg == .postgres(.init(host: "db.internal", port: 6543, user: "app@x", password: "p:ss", database: "runtime", tls: .require)))
    #expect("\(pg)" == "postgres://app@x:[redacted]@db.internal:6543/runtime?sslmode=require")
    #expect(
      try ConfigStoreLocation.parse("postgresql://u@h/db")
        == .postgres(.init(host: "h", port: 5432, user: "u", password: nil, database: "db", tls: .disable)))
    for bad in [
      "sqlite://", "postgres://h/db", "postgres://u@/db", "postgres://u@h", "postgres://u@h/db?sslmode=bogus", "postgres://u@h/db?x=1",
      "redis://h",
    ] {
      #expect(throws: ConfigStoreError.self, "\(bad)") { try ConfigStoreLocation.parse(bad) }
    }
    let d = try ConfigStoreDriver(url: "sqlite:///nonexistent-dir-ytempire/x.sqlite")
    #expect(d.name == "configStore" && d.displayName == "config store")
    #expect(d.kinds == [.channel, .providerChain, .rateLimit, .securityPolicy])
    #expect(throws: ConfigStoreError.self) { try ConfigStoreDriver(url: "sqlite:///tmp/x.sqlite", password: .literal("p", "q")) }
  }

  @Test("desired forms are canonical: durations in seconds, integral numbers as integers, no credentials values")
  func desiredForms() throws {
    let d = try ConfigStoreDriver(url: "sqlite:///tmp/unused-ytempire.sqlite")
    let idx = DesiredIndex(Fixtures.example)
    let ch = d.desired(Fixtures.resource(.channel, "tech-daily"), in: idx)
    let row = try #require(ch["channels"]?["tech-daily"])
    #expect(row["content"]?["duration_seconds"] == .int(600))
    #expect(row["quota_share"] == .double(0.4))
    #expect(row["active"] == true)
    #expect(row["niche"] == "tech")
    let yt = d.desired(Fixtures.resource(.rateLimit, "youtube-api"), in: idx)
    #expect(yt["rate_limits"]?["youtube-api"]?["quota"]?["costs"]?["videos.insert"] == .int(1600))
    #expect(yt["rate_limits"]?["youtube-api"]?["quota"]?["reset_at"] == "00:00")
    let pol = d.desired(Fixtures.resource(.securityPolicy, "ytempire"), in: idx)
    #expect(pol["retention_policies"]?["user_data"]?["days"] == .int(90))
    #expect(pol["retention_policies"]?["api_keys"]?["until_rotated"] == true)
    #expect(pol["service_account_permissions"]?["youtube-publisher/videos.upload"] == true)
    // Kinds of other integrations map to nothing here.
    #expect(d.desired(Fixtures.resource(.monitor, "high-api-latency"), in: idx) == .null)
    // Same resource, same bytes (the digest the engine compares).
    #expect(
      d.desired(Fixtures.resource(.providerChain, "tts"), in: idx).canonicalBytes
        == d.desired(Fixtures.resource(.providerChain, "tts"), in: idx).canonicalBytes)
  }
}
