import Foundation
import Testing

@testable import Sandbox

/// Integers clients send (query parameters, cursors, admin bodies) at and past the edges of
/// Int: each is a 400 (never a trap that kills the sandbox), and the sandbox still answers after.
@Suite struct ExtremeValueTests {
  static let extremes = [
    "9223372036854775807", "-9223372036854775808", "9223372036854775808", "99999999999999999999999",
    "-1", "0", "1e300", "4611686018427387904",
  ]

  /// The sandbox is still alive and serving.
  func alive(_ sb: SandboxServer) async throws {
    let h = try await sb.call("GET", "/v1/sys/health")
    #expect(h.status == 200, "the sandbox stopped answering")
  }

  @Test func cloudflarePageAndPerPage() async throws {
    try await withSandbox { sb in
      for v in Self.extremes {
        let page = try await sb.cf("GET", "/zones?page=\(v)")
        #expect(page.status == 400, "page=\(v): \(page.status) \(page.text)")
        let per = try await sb.cf("GET", "/zones?page=1&per_page=\(v)")
        #expect(per.status == 400, "per_page=\(v): \(per.status) \(per.text)")
      }
      let last = try await sb.cf("GET", "/zones?page=1000000&per_page=50")
      #expect(last.status == 200, "the largest page is in range: \(last.text)")
      #expect(last.json?["result"]?.array?.isEmpty == true)
      try await alive(sb)
    }
  }

  @Test func youtubeMaxResultsAndPageToken() async throws {
    try await withSandbox { sb in
      let token = try await sb.accessToken()
      for v in Self.extremes where v != "0" {
        let r = try await sb.yt("GET", "/playlists?part=id&mine=true&maxResults=\(v)", token: token)
        #expect(r.status == 400, "maxResults=\(v): \(r.status)")
      }
      for t in ["SBP" + String(Int.max, radix: 36) + "Q", "SBP-" + String(Int.max, radix: 36) + "Q", "SBPzzzzzzzzzzzzzzzzzzzzQ"] {
        let r = try await sb.yt("GET", "/playlists?part=id&mine=true&maxResults=50&pageToken=\(t)", token: token)
        #expect(r.status == 400, "pageToken=\(t): \(r.status)")
      }
      try await alive(sb)
    }
  }

  @Test func n8nLimitAndCursor() async throws {
    try await withSandbox { sb in
      for v in Self.extremes {
        let r = try await sb.n8n("GET", "/workflows?limit=\(v)")
        #expect(r.status == 400, "limit=\(v): \(r.status)")
      }
      // A forged cursor: offset and limit near Int.max made offset + limit overflow.
      for (o, l) in [(Int.max, 250), (1, Int.max), (Int.max - 1, Int.max), (0, -5), (-1, 10), (0, 0)] {
        let cursor = Data(JSON.object(["offset": .int(o), "limit": .int(l)]).bytes).base64EncodedString()
        let enc = cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        let r = try await sb.n8n("GET", "/workflows?cursor=\(enc)")
        #expect(r.status == 400, "cursor offset \(o) limit \(l): \(r.status) \(r.text)")
      }
      try await alive(sb)
    }
  }

  @Test func adminClock() async throws {
    try await withSandbox { sb in
      for v in Self.extremes + ["\"100\"", "true", "null", "1.5", "3155760001"] where v != "0" {
        let r = try await sb.call(
          "POST", "/_sandbox/clock", headers: ["Content-Type": "application/json"],
          raw: Array("{\"advanceSeconds\": \(v)}".utf8))
        #expect(r.status == 400, "advanceSeconds \(v): \(r.status) \(r.text)")
      }
      // In range, but the total would pass the bound: refused, and the clock is unchanged.
      let ok = try await sb.call("POST", "/_sandbox/clock", json: ["advanceSeconds": 3_000_000_000])
      #expect(ok.status == 200, "\(ok.text)")
      let year = { (r: RawResponse) in r.json?["now"]?.string?.prefix(4) }
      let before = year(try await sb.call("GET", "/_sandbox/clock"))
      #expect(before.map { Int($0)! > 2100 } == true, "\(String(describing: before))")
      let again = try await sb.call("POST", "/_sandbox/clock", json: ["advanceSeconds": 3_000_000_000])
      #expect(again.status == 400, "\(again.text)")
      #expect(year(try await sb.call("GET", "/_sandbox/clock")) == before, "the refused advance left the clock alone")
      try await alive(sb)
    }
  }

  @Test func adminQuota() async throws {
    try await withSandbox { sb in
      for v in Self.extremes {
        for body in [
          "{\"youtube\": {\"used\": \(v)}}", "{\"youtube\": {\"limit\": \(v)}}",
          "{\"youtube\": {\"costs\": {\"videos.insert\": \(v)}}}",
        ] where v != "0" {
          let r = try await sb.call("PUT", "/_sandbox/quota", headers: ["Content-Type": "application/json"], raw: Array(body.utf8))
          #expect(r.status == 400, "\(body): \(r.status) \(r.text)")
        }
        for k in ["limit", "windowSeconds", "blockSeconds"] {
          let body = "{\"cloudflare\": {\"\(k)\": \(v)}}"
          let r = try await sb.call("PUT", "/_sandbox/quota", headers: ["Content-Type": "application/json"], raw: Array(body.utf8))
          #expect(r.status == 400, "\(body): \(r.status) \(r.text)")
        }
      }
      // The largest values in range are accepted and used without overflow.
      let big = try await sb.call(
        "PUT", "/_sandbox/quota",
        json: [
          "youtube": [
            "used": 1_000_000_000_000, "limit": 1_000_000_000_000,
            "costs": ["playlists.insert": 1_000_000_000_000],
          ],
          "cloudflare": ["limit": 1_000_000_000, "windowSeconds": 31_536_000, "blockSeconds": 31_536_000],
        ])
      #expect(big.status == 200, "\(big.text)")
      let token = try await sb.accessToken()
      let insert = try await sb.yt(
        "POST", "/playlists?part=snippet,status", token: token,
        json: ["snippet": ["title": "x"], "status": ["privacyStatus": "private"]])
      #expect(insert.status == 403, "over quota: \(insert.status) \(insert.text)")
      #expect(try await sb.cf("GET", "/zones").status == 200)
      try await alive(sb)
    }
  }

  @Test func faultRetryAfter() throws {
    #expect(throws: (any Error).self) { try FaultSpec.parse("youtube=throttle:1:9223372036854775807") }
    #expect(throws: (any Error).self) { try FaultSpec.parse("youtube=throttle:1:86401") }
    _ = try FaultSpec.parse("youtube=throttle:1:86400")
  }
}
