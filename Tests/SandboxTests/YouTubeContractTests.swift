import Foundation
import Testing

@testable import Sandbox

@Suite struct OAuthContractTests {
  @Test func refreshGrantAnswersLikeGoogle() async throws {
    try await withSandbox { sb in
      let ok = try await sb.form(
        "/token",
        [
          ("client_id", sb.credentials.youtubeClientId), ("client_secret", sb.credentials.youtubeClientSecret),
          ("refresh_token", "1//sandbox-refresh-tech-daily"), ("grant_type", "refresh_token"),
        ])
      #expect(ok.status == 200)
      let j = try #require(ok.json)
      #expect(j["expires_in"] == 3599)
      #expect(j["token_type"] == "Bearer")
      #expect(j["scope"]?.string?.contains("youtube") == true)
      #expect(j["refresh_token"] == nil)
      #expect(j["access_token"]?.string?.hasPrefix("ya29.") == true)

      let unknown = try await sb.form(
        "/token",
        [
          ("client_id", sb.credentials.youtubeClientId), ("client_secret", sb.credentials.youtubeClientSecret),
          ("refresh_token", "1//nope"), ("grant_type", "refresh_token"),
        ])
      #expect(unknown.status == 400)
      #expect(unknown.json == ["error": "invalid_grant", "error_description": "Token has been expired or revoked."])

      let badClient = try await sb.form(
        "/token",
        [
          ("client_id", "other"), ("client_secret", "x"),
          ("refresh_token", "1//sandbox-refresh-tech-daily"), ("grant_type", "refresh_token"),
        ])
      #expect(badClient.status == 401)
      #expect(badClient.json?["error"] == "invalid_client")

      let badGrant = try await sb.form("/token", [("grant_type", "password")])
      #expect(badGrant.status == 400)
      #expect(badGrant.json?["error"] == "unsupported_grant_type")

      let missing = try await sb.form(
        "/token",
        [
          ("client_id", sb.credentials.youtubeClientId), ("client_secret", sb.credentials.youtubeClientSecret),
          ("grant_type", "refresh_token"),
        ])
      #expect(missing.status == 400)
      #expect(missing.json?["error"] == "invalid_request")
    }
  }

  @Test func accessTokensExpireAfter3599Seconds() async throws {
    try await withSandbox { sb in
      let token = try await sb.accessToken()
      let before = try await sb.yt("GET", "/channels?part=id&mine=true", token: token)
      #expect(before.status == 200)
      sb.clock.advance(by: 3600)
      let after = try await sb.yt("GET", "/channels?part=id&mine=true", token: token)
      #expect(after.status == 401)
      #expect(googleReason(after) == "authError")
      #expect(after.json?["error"]?["code"] == 401)
    }
  }
}

@Suite struct YouTubeContractTests {
  @Test func missingOrWrongCredentialsAre401() async throws {
    try await withSandbox { sb in
      let none = try await sb.call("GET", "/youtube/v3/channels?part=snippet&mine=true")
      #expect(none.status == 401)
      #expect(googleReason(none) == "required")
      #expect(none.json?["error"]?["errors"]?.array?.first?["location"] == "Authorization")
      #expect(none.headers["www-authenticate"]?.hasPrefix("Bearer") == true)
      let wrong = try await sb.yt("GET", "/channels?part=snippet&mine=true", token: "ya29.forged")
      #expect(wrong.status == 401)
      #expect(googleReason(wrong) == "authError")
      // Rejected requests still cost a unit each.
      #expect(sb.youtubeQuotaUsed == 2)
    }
  }

  @Test func channelsListEnvelopeAndParts() async throws {
    try await withSandbox { sb in
      let token = try await sb.accessToken()
      let r = try await sb.yt("GET", "/channels?part=snippet,statistics&id=\(techDaily),UCdoesnotexist0000000000", token: token)
      #expect(r.status == 200)
      let j = try #require(r.json)
      #expect(j["kind"] == "youtube#channelListResponse")
      #expect(j["etag"]?.string != nil)
      #expect(j["nextPageToken"] == nil)
      #expect(j["pageInfo"] == ["totalResults": 1, "resultsPerPage": 1])
      let item = try #require(j["items"]?.array?.first)
      #expect(item["kind"] == "youtube#channel")
      #expect(item["id"]?.string == techDaily)
      #expect(item["snippet"]?["title"] == "Tech Daily")
      #expect(item["statistics"]?["viewCount"]?.string != nil, "counts are JSON strings")
      #expect(item["brandingSettings"] == nil, "only the requested parts")

      let noPart = try await sb.yt("GET", "/channels?id=\(techDaily)", token: token)
      #expect(noPart.status == 400)
      #expect(googleReason(noPart) == "required")
      let badPart = try await sb.yt("GET", "/channels?part=snippet,bogus&id=\(techDaily)", token: token)
      #expect(badPart.status == 400)
      #expect(googleReason(badPart) == "unknownPart")
      let noFilter = try await sb.yt("GET", "/channels?part=snippet", token: token)
      #expect(noFilter.status == 400)
      #expect(googleReason(noFilter) == "missingRequiredParameter")
      let both = try await sb.yt("GET", "/channels?part=id&mine=true&id=\(techDaily)", token: token)
      #expect(both.status == 400)
      #expect(googleReason(both) == "incompatibleParameters")
      let many = (0..<51).map { "UC\($0)" }.joined(separator: ",")
      let tooMany = try await sb.yt("GET", "/channels?part=id&id=\(many)", token: token)
      #expect(tooMany.status == 400)
    }
  }

  @Test func brandingUpdateOverwritesTheWholePart() async throws {
    try await withSandbox { sb in
      let token = try await sb.accessToken()
      let before = try await sb.yt("GET", "/channels?part=brandingSettings&id=\(techDaily)", token: token)
      let old = try #require(before.json?["items"]?.array?.first?["brandingSettings"]?["channel"])
      #expect(old["keywords"]?.string != nil, "keywords are one string")
      #expect(old["country"] == "US")

      // Only the title is sent: description, keywords and country are wiped.
      let put = try await sb.yt(
        "PUT", "/channels?part=brandingSettings", token: token,
        json: ["id": .string(techDaily), "brandingSettings": ["channel": ["title": "Tech Daily"]]])
      #expect(put.status == 200, "\(put.text)")
      #expect(put.json?["brandingSettings"]?["channel"] == ["title": "Tech Daily"])
      let after = try await sb.yt("GET", "/channels?part=brandingSettings,snippet&id=\(techDaily)", token: token)
      let item = try #require(after.json?["items"]?.array?.first)
      #expect(item["brandingSettings"]?["channel"] == ["title": "Tech Daily"])
      #expect(item["brandingSettings"]?["image"] == nil, "the image section was not sent either")
      #expect(item["snippet"]?["description"] == "")

      let full = try await sb.yt(
        "PUT", "/channels?part=brandingSettings", token: token,
        json: [
          "id": .string(techDaily),
          "brandingSettings": ["channel": ["title": "Tech Daily", "description": "New", "keywords": "tech \"ai news\""]],
        ])
      #expect(full.status == 200)
      #expect(full.json?["brandingSettings"]?["channel"]?["keywords"] == "tech \"ai news\"")
    }
  }

  @Test func brandingUpdateErrors() async throws {
    try await withSandbox { sb in
      let token = try await sb.accessToken()
      let array = try await sb.yt(
        "PUT", "/channels?part=brandingSettings", token: token,
        json: ["id": .string(techDaily), "brandingSettings": ["channel": ["title": "T", "keywords": ["a", "b"]]]])
      #expect(array.status == 400)
      #expect(googleReason(array) == "invalid")
      let unknown = try await sb.yt(
        "PUT", "/channels?part=brandingSettings", token: token,
        json: ["id": .string(techDaily), "brandingSettings": ["channel": ["titel": "T"]]])
      #expect(unknown.status == 400)
      #expect(unknown.json?["error"]?["message"]?.string?.contains("Unknown name \"titel\"") == true)
      let twoParts = try await sb.yt(
        "PUT", "/channels?part=brandingSettings,snippet", token: token,
        json: ["id": .string(techDaily), "brandingSettings": [:]])
      #expect(twoParts.status == 400)
      let other = try await sb.yt(
        "PUT", "/channels?part=brandingSettings", token: token,
        json: ["id": "UCgCfrL1spNxnyVmihA-2O76", "brandingSettings": ["channel": ["title": "X"]]])
      // finance-focus exists but belongs to another token.
      #expect(other.status == 403)
      #expect(googleReason(other) == "forbidden")
      let missing = try await sb.yt(
        "PUT", "/channels?part=brandingSettings", token: token,
        json: ["id": "UCxxxxxxxxxxxxxxxxxxxxxx", "brandingSettings": ["channel": ["title": "X"]]])
      #expect(missing.status == 404)
      #expect(googleReason(missing) == "channelNotFound")
      #expect(missing.json?["error"]?["errors"]?.array?.first?["domain"] == "youtube.channel")
      let garbage = try await sb.call(
        "PUT", "/youtube/v3/channels?part=brandingSettings", headers: ["Authorization": "Bearer \(token)"],
        raw: Array("{not json".utf8))
      #expect(garbage.status == 400)
      #expect(googleReason(garbage) == "parseError")
    }
  }

  @Test func playlistsCrudPaginationAndDescriptionWipe() async throws {
    try await withSandbox { sb in
      let token = try await sb.accessToken()
      var ids: [String] = []
      for i in 1...3 {
        let r = try await sb.yt(
          "POST", "/playlists?part=snippet,status", token: token,
          json: [
            "snippet": ["title": .string("P\(i)"), "description": "D", "tags": ["x"]],
            "status": ["privacyStatus": "unlisted"],
          ])
        #expect(r.status == 200, "\(r.text)")
        #expect(r.json?["kind"] == "youtube#playlist")
        #expect(r.json?["snippet"]?["channelId"]?.string == techDaily)
        #expect(r.json?["status"]?["privacyStatus"] == "unlisted")
        ids.append(try #require(r.json?["id"]?.string))
      }
      // 3 created + 1 seeded playlist, two per page.
      let p1 = try await sb.yt("GET", "/playlists?part=snippet,status&channelId=\(techDaily)&maxResults=2", token: token)
      #expect(p1.status == 200)
      #expect(p1.json?["kind"] == "youtube#playlistListResponse")
      #expect(p1.json?["pageInfo"] == ["totalResults": 4, "resultsPerPage": 2])
      let next = try #require(p1.json?["nextPageToken"]?.string)
      let p2 = try await sb.yt("GET", "/playlists?part=snippet&channelId=\(techDaily)&maxResults=2&pageToken=\(next)", token: token)
      #expect(p2.json?["items"]?.array?.count == 2)
      #expect(p2.json?["nextPageToken"] == nil)
      #expect(p2.json?["prevPageToken"]?.string != nil)
      let all = (p1.json?["items"]?.array ?? []) + (p2.json?["items"]?.array ?? [])
      let listed = Set(all.compactMap { item -> String? in item["id"]?.string })
      #expect(listed.isSuperset(of: ids))

      // An update without description deletes it (and the tags).
      let up = try await sb.yt("PUT", "/playlists?part=snippet", token: token, json: ["id": .string(ids[0]), "snippet": ["title": "P1b"]])
      #expect(up.status == 200)
      #expect(up.json?["snippet"]?["description"] == "")
      #expect(up.json?["snippet"]?["tags"] == nil)
      let check = try await sb.yt("GET", "/playlists?part=snippet,status&id=\(ids[0])", token: token)
      #expect(check.json?["items"]?.array?.first?["snippet"]?["title"] == "P1b")
      #expect(check.json?["items"]?.array?.first?["status"]?["privacyStatus"] == "unlisted", "status part not sent, untouched")

      let del = try await sb.yt("DELETE", "/playlists?id=\(ids[0])", token: token)
      #expect(del.status == 204)
      #expect(del.body.isEmpty)
      let again = try await sb.yt("DELETE", "/playlists?id=\(ids[0])", token: token)
      #expect(again.status == 404)
      #expect(googleReason(again) == "playlistNotFound")
    }
  }

  @Test func playlistErrors() async throws {
    try await withSandbox { sb in
      let token = try await sb.accessToken()
      let noTitle = try await sb.yt("POST", "/playlists?part=snippet", token: token, json: ["snippet": ["description": "x"]])
      #expect(noTitle.status == 400)
      #expect(googleReason(noTitle) == "playlistTitleRequired")
      let badPrivacy = try await sb.yt(
        "POST", "/playlists?part=snippet,status", token: token,
        json: ["snippet": ["title": "x"], "status": ["privacyStatus": "secret"]])
      #expect(badPrivacy.status == 400)
      let badToken = try await sb.yt("GET", "/playlists?part=snippet&channelId=\(techDaily)&pageToken=garbage", token: token)
      #expect(badToken.status == 400)
      #expect(googleReason(badToken) == "invalidPageToken")
      let badMax = try await sb.yt("GET", "/playlists?part=snippet&channelId=\(techDaily)&maxResults=51", token: token)
      #expect(badMax.status == 400)
      #expect(googleReason(badMax) == "invalidParameter")
      let notFound = try await sb.yt("PUT", "/playlists?part=snippet", token: token, json: ["id": "PLnope", "snippet": ["title": "x"]])
      #expect(notFound.status == 404)
      #expect(googleReason(notFound) == "playlistNotFound")
      // Another channel's playlist.
      let otherToken = try await sb.accessToken("science-simplified")
      let mine = try await sb.yt("POST", "/playlists?part=snippet", token: otherToken, json: ["snippet": ["title": "theirs"]])
      let theirId = try #require(mine.json?["id"]?.string)
      let forbidden = try await sb.yt(
        "PUT", "/playlists?part=snippet", token: token, json: ["id": .string(theirId), "snippet": ["title": "x"]])
      #expect(forbidden.status == 403)
      #expect(googleReason(forbidden) == "playlistForbidden")
    }
  }

  @Test func quotaCostsExhaustionAndPacificMidnightReset() async throws {
    // 23:50 in Los Angeles on 2026-11-25 (PST, UTC-8).
    let start = Date(timeIntervalSince1970: 1_795_679_400)
    try await withSandbox(
      { o in
        o.clock = SandboxClock { start }
        o.quota.dailyUnits = 120
      },
      { sb in
        let token = try await sb.accessToken()
        _ = try await sb.yt("GET", "/channels?part=id&mine=true", token: token)  // 1
        #expect(sb.youtubeQuotaUsed == 1)
        _ = try await sb.yt("GET", "/channels?mine=true", token: token)  // invalid: 1
        #expect(sb.youtubeQuotaUsed == 2)
        _ = try await sb.yt("POST", "/playlists?part=snippet", token: token, json: ["snippet": ["title": "a"]])  // 50
        #expect(sb.youtubeQuotaUsed == 52)
        _ = try await sb.yt("POST", "/playlists?part=snippet", token: token, json: ["snippet": ["title": "b"]])  // 50
        #expect(sb.youtubeQuotaUsed == 102)
        let over = try await sb.yt("POST", "/playlists?part=snippet", token: token, json: ["snippet": ["title": "c"]])
        #expect(over.status == 403)
        #expect(
          over.json == [
            "error": [
              "code": 403,
              "message":
                "The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.",
              "errors": [
                [
                  "message":
                    "The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.",
                  "domain": "youtube.quota", "reason": "quotaExceeded",
                ]
              ],
            ]
          ])
        #expect(
          over.text.contains(#"exceeded your \u003ca href=\"/youtube/v3/getting-started#quota\"\u003equota\u003c/a\u003e."#),
          "Google escapes the HTML in its JSON")
        let admin = try await sb.call("GET", "/_sandbox/quota")
        #expect(admin.json?["youtube"]?["used"] == 102)
        #expect(admin.json?["youtube"]?["day"] == "2026-11-25")
        #expect(admin.json?["youtube"]?["resetsAt"] == "2026-11-26T08:00:00Z")
        sb.clock.advance(by: 11 * 60)  // 00:01 Pacific
        let fresh = try await sb.yt("POST", "/playlists?part=snippet", token: token, json: ["snippet": ["title": "c"]])
        #expect(fresh.status == 200)
        #expect(sb.youtubeQuotaUsed == 50)
      })
  }

  @Test func costTableIsConfigurable() async throws {
    try await withSandbox(
      { o in o.quota.costs["playlists.insert"] = 7 },
      { sb in
        let token = try await sb.accessToken()
        _ = try await sb.yt("POST", "/playlists?part=snippet", token: token, json: ["snippet": ["title": "a"]])
        #expect(sb.youtubeQuotaUsed == 7)
        let set = try await sb.call("PUT", "/_sandbox/quota", json: ["youtube": ["costs": ["playlists.insert": 3]]])
        #expect(set.status == 200)
        _ = try await sb.yt("POST", "/playlists?part=snippet", token: token, json: ["snippet": ["title": "b"]])
        #expect(sb.youtubeQuotaUsed == 10)
      })
  }
}
