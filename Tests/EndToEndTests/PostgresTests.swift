import Foundation
import TestSupport
import Testing

/// The runtime config store on a real PostgreSQL (initdb/pg_ctl from the postgresql package).
@Suite("end to end: PostgreSQL config store", .enabled(if: PostgresServer.isAvailable, "PostgreSQL is not installed (make deps)"))
struct PostgresTests {
  @Test("apply writes the runtime config rows to PostgreSQL; a change only the store sees makes no YouTube call")
  func configStoreOnPostgres() async throws {
    let pg = try await offload { try PostgresServer.start() }
    do {
      try await Empire.with(
        config: { text in
          let lines = text.components(separatedBy: "\n").map { line in
            line.hasPrefix("    url: \"sqlite://") ? "    url: \"\(pg.url)\"" : line
          }
          return lines.joined(separator: "\n")
        },
        { e in
          #expect(e.configText.contains(pg.url))
          try await e.apply()
          let rows = try await offload { try pg.psql("SELECT name, youtube_channel_id, videos_per_day FROM channels ORDER BY name") }
          #expect(rows.map { $0[0] } == ["finance-focus", "science-simplified", "tech-daily"], "\(rows)")
          #expect(rows.first { $0[0] == "tech-daily" }?[1] == e.channelId("tech-daily"))
          #expect(rows.first { $0[0] == "tech-daily" }?[2] == "5")
          #expect(try await offload { try pg.psql("SELECT count(*) FROM rate_limits") } == [["10"]])

          let text = try e.channelFile("tech-daily").replacingOccurrences(of: "    videosPerDay: 5\n", with: "    videosPerDay: 7\n")
          try e.commit("tech-daily: seven videos a day", ["channels/tech-daily.yaml": text])
          let writes = e.youtubeWrites
          let plan = try await e.planJSON()
          #expect(PlanJSON.callNames(plan, driver: "youtube") == [])
          #expect(!PlanJSON.callNames(plan).isEmpty)
          try await e.apply()
          #expect(e.youtubeWrites == writes)
          let after = try await offload { try pg.psql("SELECT videos_per_day FROM channels WHERE name = 'tech-daily'") }
          #expect(after == [["7"]])
          #expect(try await e.run("plan", "--detailed-exitcode").status == 0)
        })
    } catch {
      pg.stop()
      throw error
    }
    pg.stop()
  }
}
