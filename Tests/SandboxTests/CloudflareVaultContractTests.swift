import Foundation
import Testing

@testable import Sandbox

let videoRule: JSON = [
  "ref": "ytempire-videos", "description": "videos", "expression": "http.request.uri.path.extension eq \"mp4\"",
  "action": "set_cache_settings",
  "action_parameters": ["cache": true, "edge_ttl": ["mode": "override_origin", "default": 86400]], "enabled": true,
]
let apiRule: JSON = [
  "ref": "ytempire-api", "expression": "starts_with(http.request.uri.path, \"/api/\")", "action": "set_cache_settings",
  "action_parameters": ["cache": false],
]

@Suite struct CloudflareContractTests {
  func zoneId(_ sb: SandboxServer, _ name: String) async throws -> String {
    let r = try await sb.cf("GET", "/zones?name=\(name)&page=1&per_page=20")
    return try #require(r.json?["result"]?.array?.first?["id"]?.string)
  }

  @Test func tokenErrors() async throws {
    try await withSandbox { sb in
      let none = try await sb.call("GET", "/client/v4/zones")
      #expect(none.status == 400)
      #expect(none.json?["success"] == false)
      #expect(none.json?["result"] == .null)
      #expect(none.json?["errors"]?.array?.first?["code"] == 9106)
      let malformed = try await sb.call("GET", "/client/v4/zones", headers: ["Authorization": "Token abc"])
      #expect(malformed.json?["errors"]?.array?.first?["code"] == 6003)
      let wrong = try await sb.call("GET", "/client/v4/zones", headers: ["Authorization": "Bearer wrong"])
      #expect(wrong.status == 403)
      #expect(wrong.json?["errors"]?.array?.first?["code"] == 9109)
    }
  }

  @Test func zonesEnvelopeAndResultInfo() async throws {
    try await withSandbox { sb in
      let r = try await sb.cf("GET", "/zones?name=ytempire.com&page=1&per_page=20")
      #expect(r.status == 200)
      let j = try #require(r.json)
      #expect(j["success"] == true)
      #expect(j["errors"] == [])
      #expect(j["messages"] == [])
      #expect(j["result_info"] == ["page": 1, "per_page": 20, "count": 1, "total_count": 1, "total_pages": 1])
      let z = try #require(j["result"]?.array?.first)
      #expect(z["name"] == "ytempire.com")
      #expect(z["status"] == "active")
      #expect(z["type"] == "full")
      #expect(z["id"]?.string?.count == 32)
      let all = try await sb.cf("GET", "/zones?per_page=5")
      #expect(all.json?["result_info"]?["total_count"] == 2)
      let none = try await sb.cf("GET", "/zones?name=nope.example")
      #expect(none.json?["result"] == [])
    }
  }

  @Test func entrypointMissingIs10003AndPutReplacesThePhase() async throws {
    try await withSandbox { sb in
      let zone = try await zoneId(sb, "ytempire.com")
      let path = "/zones/\(zone)/rulesets/phases/http_request_cache_settings/entrypoint"
      let missing = try await sb.cf("GET", path)
      #expect(missing.status == 404)
      #expect(missing.json?["success"] == false)
      #expect(missing.json?["result"] == .null)
      #expect(missing.json?["errors"]?.array?.first?["code"] == 10003)

      let put = try await sb.cf("PUT", path, json: ["rules": [videoRule, apiRule]])
      #expect(put.status == 200, "\(put.text)")
      let rs = try #require(put.json?["result"])
      #expect(rs["kind"] == "zone")
      #expect(rs["phase"] == "http_request_cache_settings")
      #expect(rs["version"] == "1")
      #expect(rs["rules"]?.array?.count == 2)
      let first = try #require(rs["rules"]?.array?.first)
      #expect(first["id"]?.string?.count == 32)
      #expect(first["ref"] == "ytempire-videos")
      #expect(first["last_updated"]?.string != nil)

      // A second PUT with one rule leaves only that rule.
      let put2 = try await sb.cf("PUT", path, json: ["rules": [apiRule]])
      #expect(put2.json?["result"]?["version"] == "2")
      let get = try await sb.cf("GET", path)
      #expect(get.json?["result"]?["rules"]?.array?.map { $0["ref"] } == ["ytempire-api"])
    }
  }

  @Test func entrypointValidation() async throws {
    try await withSandbox { sb in
      let zone = try await zoneId(sb, "ytempire.com")
      let path = "/zones/\(zone)/rulesets/phases/http_request_cache_settings/entrypoint"
      let named = try await sb.cf("PUT", path, json: ["name": "x", "kind": "zone", "phase": "http_request_cache_settings", "rules": []])
      #expect(named.status == 400)
      #expect(named.json?["success"] == false)
      var wrongAction = videoRule
      wrongAction["action"] = "block"
      let r2 = try await sb.cf("PUT", path, json: ["rules": [wrongAction]])
      #expect(r2.status == 400)
      var badExpr = videoRule
      badExpr["expression"] = "starts_with(http.request.uri.path, \"/api/\""
      let r3 = try await sb.cf("PUT", path, json: ["rules": [badExpr]])
      #expect(r3.status == 400)
      let badZone = try await sb.cf("GET", "/zones/0123/rulesets/phases/http_request_cache_settings/entrypoint")
      #expect(badZone.status == 400)
      #expect(badZone.json?["errors"]?.array?.first?["code"] == 7003)
      let noRoute = try await sb.cf("GET", "/nothing/here")
      #expect(noRoute.json?["errors"]?.array?.first?["code"] == 7000)
    }
  }

  @Test func requestLimitBlocksForFiveMinutes() async throws {
    let start = Date(timeIntervalSince1970: 1_795_679_400)
    try await withSandbox(
      { o in
        o.clock = SandboxClock { start }
        o.cloudflareLimits.requests = 5
      },
      { sb in
        for _ in 0..<5 {
          let ok = try await sb.cf("GET", "/zones")
          #expect(ok.status == 200)
        }
        let limited = try await sb.cf("GET", "/zones")
        #expect(limited.status == 429)
        #expect(limited.headers["retry-after"] == "300")
        #expect(limited.json?["errors"]?.array?.first?["code"] == 971)
        #expect(limited.json?["success"] == false)
        sb.clock.advance(by: 120)
        let still = try await sb.cf("GET", "/zones")
        #expect(still.status == 429)
        #expect(still.headers["retry-after"] == "180")
        sb.clock.advance(by: 181)
        let again = try await sb.cf("GET", "/zones")
        #expect(again.status == 200)
      })
  }
}

@Suite struct VaultContractTests {
  @Test func tokenErrorsAndHealth() async throws {
    try await withSandbox { sb in
      let none = try await sb.call("GET", "/v1/sys/policies/acl/default")
      #expect(none.status == 403)
      #expect(none.json == ["errors": ["permission denied"]])
      let wrong = try await sb.call("GET", "/v1/sys/policies/acl/default", headers: ["X-Vault-Token": "s.nope"])
      #expect(wrong.status == 403)
      #expect(wrong.json?["errors"]?.array?.first?.string?.contains("permission denied") == true)
      let health = try await sb.call("GET", "/v1/sys/health")
      #expect(health.status == 200)
      #expect(health.json?["sealed"] == false)
      #expect(health.json?["initialized"] == true)
    }
  }

  @Test func sealedVaultAnswers503() async throws {
    try await withSandbox { sb in
      let seal = try await sb.call("PUT", "/_sandbox/state/vault/sealed", json: true)
      #expect(seal.status == 200)
      let health = try await sb.call("GET", "/v1/sys/health")
      #expect(health.status == 503)
      #expect(health.json?["sealed"] == true)
      let read = try await sb.vault("GET", "/sys/policies/acl/default")
      #expect(read.status == 503)
      #expect(read.json == ["errors": ["Vault is sealed"]])
    }
  }

  @Test func aclPolicies() async throws {
    try await withSandbox { sb in
      let policy = "path \"secret/data/ytempire/youtube\" {\n  capabilities = [\"read\"]\n}\n"
      let put = try await sb.vault("PUT", "/sys/policies/acl/ytempire-youtube-publisher", json: ["policy": .string(policy)])
      #expect(put.status == 204)
      #expect(put.body.isEmpty)
      let get = try await sb.vault("GET", "/sys/policies/acl/ytempire-youtube-publisher")
      #expect(get.status == 200)
      let j = try #require(get.json)
      #expect(j["name"] == "ytempire-youtube-publisher")
      #expect(j["policy"]?.string == policy)
      #expect(j["data"] == ["name": "ytempire-youtube-publisher", "policy": .string(policy)])
      let list = try await sb.vault("GET", "/sys/policies/acl?list=true")
      #expect(list.json?["data"]?["keys"] == ["default", "root", "ytempire-youtube-publisher"])
      let empty = try await sb.vault("PUT", "/sys/policies/acl/x", json: ["policy": ""])
      #expect(empty.status == 400)
      #expect(empty.json == ["errors": ["'policy' parameter not supplied or empty"]])
      let del = try await sb.vault("DELETE", "/sys/policies/acl/ytempire-youtube-publisher")
      #expect(del.status == 204)
      let gone = try await sb.vault("GET", "/sys/policies/acl/ytempire-youtube-publisher")
      #expect(gone.status == 404)
      #expect(gone.json == ["errors": []])
      let root = try await sb.vault("DELETE", "/sys/policies/acl/root")
      #expect(root.status == 400)
    }
  }

  @Test func kvV2VersionsAndMetadata() async throws {
    try await withSandbox { sb in
      let w1 = try await sb.vault("POST", "/secret/data/ytempire/test", json: ["data": ["api_key": "one"]])
      #expect(w1.status == 200)
      #expect(w1.json?["data"]?["version"] == 1)
      #expect(w1.json?["data"]?["deletion_time"] == "")
      #expect(w1.json?["data"]?["destroyed"] == false)
      let w2 = try await sb.vault("POST", "/secret/data/ytempire/test", json: ["data": ["api_key": "two"], "options": ["cas": 1]])
      #expect(w2.json?["data"]?["version"] == 2)
      let cas = try await sb.vault("POST", "/secret/data/ytempire/test", json: ["data": ["api_key": "x"], "options": ["cas": 1]])
      #expect(cas.status == 400)
      #expect(cas.json?["errors"]?.array?.count == 1)
      let read = try await sb.vault("GET", "/secret/data/ytempire/test")
      #expect(read.json?["data"]?["data"] == ["api_key": "two"])
      #expect(read.json?["data"]?["metadata"]?["version"] == 2)
      let meta = try await sb.vault("GET", "/secret/metadata/ytempire/test")
      let m = try #require(meta.json?["data"])
      #expect(m["current_version"] == 2)
      #expect(m["versions"]?.object?.keys.sorted() == ["1", "2"])
      let created = try #require(m["created_time"]?.string)
      #expect(created.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$"#, options: .regularExpression) != nil)
      #expect(m["updated_time"]?.string != nil)
      let unknown = try await sb.vault("GET", "/secret/data/ytempire/none")
      #expect(unknown.status == 404)
      #expect(unknown.json == ["errors": []])
      let list = try await sb.vault("GET", "/secret/metadata/ytempire?list=true")
      #expect(list.json?["data"]?["keys"]?.array?.contains("test") == true)
      let noData = try await sb.vault("POST", "/secret/data/ytempire/test", json: ["nodata": true])
      #expect(noData.status == 400)
      let route = try await sb.vault("GET", "/nomount/x")
      #expect(route.status == 404)
    }
  }
}
