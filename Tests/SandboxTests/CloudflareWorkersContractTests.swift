import Foundation
import Testing

@testable import Sandbox

/// Zone settings, Workers scripts and routes, R2 buckets, Configuration Rules.
@Suite struct CloudflareWorkersContractTests {
  let account = SandboxCloudflare.accountId
  let worker = "addEventListener('fetch', event => { event.respondWith(fetch(event.request)) })\n"

  func zoneId(_ sb: SandboxServer, _ name: String = "ytempire.com") async throws -> String {
    let r = try await sb.cf("GET", "/zones?name=\(name)")
    return try #require(r.json?["result"]?.array?.first?["id"]?.string)
  }

  func multipart(_ metadata: String, parts: [(name: String, filename: String?, body: String)]) -> (body: [UInt8], type: String) {
    let b = "sandbox-boundary-42"
    var s = "--\(b)\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n\(metadata)\r\n"
    for p in parts {
      s += "--\(b)\r\nContent-Disposition: form-data; name=\"\(p.name)\"" + (p.filename.map { "; filename=\"\($0)\"" } ?? "")
      s += "\r\nContent-Type: application/javascript\r\n\r\n\(p.body)\r\n"
    }
    s += "--\(b)--\r\n"
    return (Array(s.utf8), "multipart/form-data; boundary=\(b)")
  }

  func upload(_ sb: SandboxServer, _ name: String, _ m: (body: [UInt8], type: String)) async throws -> RawResponse {
    try await sb.call(
      "PUT", "/client/v4/accounts/\(account)/workers/scripts/\(name)",
      headers: ["Authorization": "Bearer \(sb.credentials.cloudflareToken)", "Content-Type": m.type], raw: m.body)
  }

  @Test func zonesNameTheSandboxAccount() async throws {
    try await withSandbox { sb in
      let r = try await sb.cf("GET", "/zones?name=ytempire.com")
      #expect(account == "bb46d57d7a1c2f188cc783a9a727a866")  // docs/sandbox.md names it
      #expect(r.json?["result"]?.array?.first?["account"]?["id"]?.string == account)
      let other = try await sb.cf("GET", "/accounts/0000/workers/scripts")
      #expect(other.status == 403)
      #expect(other.json?["errors"]?.array?.first?["code"] == 10000)
    }
  }

  @Test func zoneSettings() async throws {
    try await withSandbox { sb in
      let z = try await zoneId(sb)
      let webp = try await sb.cf("GET", "/zones/\(z)/settings/webp")
      #expect(webp.json?["result"]?["id"] == "webp")
      #expect(webp.json?["result"]?["value"] == "off")
      #expect(webp.json?["result"]?["editable"] == true)
      let on = try await sb.cf("PATCH", "/zones/\(z)/settings/webp", json: ["value": "on"])
      #expect(on.status == 200)
      #expect(on.json?["result"]?["value"] == "on")
      #expect(on.json?["result"]?["modified_on"]?.string != nil)
      #expect(try await sb.cf("GET", "/zones/\(z)/settings/webp").json?["result"]?["value"] == "on")
      let bad = try await sb.cf("PATCH", "/zones/\(z)/settings/webp", json: ["value": "maybe"])
      #expect(bad.status == 400)
      #expect(bad.json?["errors"]?.array?.first?["code"] == 1007)
      let unknown = try await sb.cf("GET", "/zones/\(z)/settings/warp_drive")
      #expect(unknown.json?["errors"]?.array?.first?["code"] == 1006)
      let all = try await sb.cf("GET", "/zones/\(z)/settings")
      #expect(all.json?["result"]?.array?.compactMap { $0["id"]?.string }.contains("polish") == true)
    }
  }

  @Test func workersScriptsMultipartAndRaw() async throws {
    try await withSandbox { sb in
      // Cloudflare's SDK: the part is named "files" and found by its filename.
      let up = try await upload(sb, "thumbs", multipart(#"{"body_part":"thumbs.js"}"#, parts: [("files", "thumbs.js", worker)]))
      #expect(up.status == 200, "\(up.text)")
      #expect(up.json?["result"]?["id"] == "thumbs")
      #expect(up.json?["result"]?["etag"]?.string?.count == 64)
      let content = try await sb.cf("GET", "/accounts/\(account)/workers/scripts/thumbs/content/v2")
      #expect(content.status == 200)
      #expect(content.text == worker)
      let list = try await sb.cf("GET", "/accounts/\(account)/workers/scripts")
      #expect(list.json?["result"]?.array?.compactMap { $0["id"]?.string } == ["thumbs"])
      // Raw JavaScript is service-worker syntax too.
      let raw = try await sb.call(
        "PUT", "/client/v4/accounts/\(account)/workers/scripts/raw-one",
        headers: ["Authorization": "Bearer \(sb.credentials.cloudflareToken)", "Content-Type": "application/javascript"],
        raw: Array(worker.utf8))
      #expect(raw.status == 200)
      // Rejections.
      let noPart = try await upload(sb, "thumbs", multipart(#"{"body_part":"other.js"}"#, parts: [("files", "thumbs.js", worker)]))
      #expect(noPart.status == 400 && noPart.json?["errors"]?.array?.first?["code"] == 10021)
      let module = try await upload(
        sb, "thumbs", multipart(#"{"body_part":"m.js"}"#, parts: [("m.js", nil, "export default { fetch() {} }")]))
      #expect(module.json?["errors"]?.array?.first?["message"]?.string?.contains("Unexpected token 'export'") == true)
      let nothing = try await upload(sb, "thumbs", multipart(#"{"body_part":"m.js"}"#, parts: [("m.js", nil, "console.log(1)")]))
      #expect(nothing.json?["errors"]?.array?.first?["message"] == "No event handlers were registered. This script does nothing.")
      let badName = try await upload(sb, "Bad_Name!", multipart(#"{"body_part":"m.js"}"#, parts: [("m.js", nil, worker)]))
      #expect(badName.json?["errors"]?.array?.first?["code"] == 10016)
      // Delete, then 404 code 10007.
      #expect(try await sb.cf("DELETE", "/accounts/\(account)/workers/scripts/thumbs").status == 200)
      let gone = try await sb.cf("GET", "/accounts/\(account)/workers/scripts/thumbs/content/v2")
      #expect(gone.status == 404)
      #expect(gone.json?["errors"]?.array?.first?["code"] == 10007)
    }
  }

  @Test func workerRoutes() async throws {
    try await withSandbox { sb in
      let z = try await zoneId(sb)
      _ = try await upload(sb, "thumbs", multipart(#"{"body_part":"t.js"}"#, parts: [("t.js", "t.js", worker)]))
      let created = try await sb.cf("POST", "/zones/\(z)/workers/routes", json: ["pattern": "*ytempire.com/img/*", "script": "thumbs"])
      #expect(created.status == 200)
      let id = try #require(created.json?["result"]?["id"]?.string)
      #expect(created.json?["result"]?["pattern"] == "*ytempire.com/img/*")
      let dup = try await sb.cf("POST", "/zones/\(z)/workers/routes", json: ["pattern": "*ytempire.com/img/*", "script": "thumbs"])
      #expect(dup.status == 409 && dup.json?["errors"]?.array?.first?["code"] == 10020)
      for bad in ["*.thumbnail.jpg", "ytempire.com/*.jpg", "cdn.*.ytempire.com/*", "example.org/*"] {
        let r = try await sb.cf("POST", "/zones/\(z)/workers/routes", json: ["pattern": .string(bad), "script": "thumbs"])
        #expect(r.status == 400 && r.json?["errors"]?.array?.first?["code"] == 10022, "\(bad)")
      }
      let noScript = try await sb.cf("POST", "/zones/\(z)/workers/routes", json: ["pattern": "ytempire.com/x/*", "script": "nope"])
      #expect(noScript.status == 400)
      let put = try await sb.cf("PUT", "/zones/\(z)/workers/routes/\(id)", json: ["pattern": "ytempire.com/img/*", "script": "thumbs"])
      #expect(put.json?["result"]?["pattern"] == "ytempire.com/img/*")
      #expect(try await sb.cf("GET", "/zones/\(z)/workers/routes").json?["result"]?.array?.count == 1)
      #expect(try await sb.cf("DELETE", "/zones/\(z)/workers/routes/\(id)").json?["result"]?["id"]?.string == id)
      #expect(try await sb.cf("DELETE", "/zones/\(z)/workers/routes/\(id)").status == 404)
    }
  }

  @Test func r2Buckets() async throws {
    try await withSandbox { sb in
      let made = try await sb.cf("POST", "/accounts/\(account)/r2/buckets", json: ["name": "videos-eu", "locationHint": "weur"])
      #expect(made.status == 200)
      #expect(made.json?["result"]?["location"] == "WEUR")
      #expect(made.json?["result"]?["creation_date"]?.string != nil)
      let again = try await sb.cf("POST", "/accounts/\(account)/r2/buckets", json: ["name": "videos-eu"])
      #expect(again.status == 409 && again.json?["errors"]?.array?.first?["code"] == 10004)
      let hint = try await sb.cf("POST", "/accounts/\(account)/r2/buckets", json: ["name": "videos-x", "locationHint": "mars"])
      #expect(hint.status == 400)
      let name = try await sb.cf("POST", "/accounts/\(account)/r2/buckets", json: ["name": "No"])
      #expect(name.json?["errors"]?.array?.first?["code"] == 10005)
      let list = try await sb.cf("GET", "/accounts/\(account)/r2/buckets")
      #expect(list.json?["result"]?["buckets"]?.array?.compactMap { $0["name"]?.string } == ["videos-eu"])
      #expect(try await sb.cf("GET", "/accounts/\(account)/r2/buckets/videos-eu").json?["result"]?["location"] == "WEUR")
      #expect(try await sb.cf("DELETE", "/accounts/\(account)/r2/buckets/videos-eu").status == 200)
      let gone = try await sb.cf("GET", "/accounts/\(account)/r2/buckets/videos-eu")
      #expect(gone.status == 404 && gone.json?["errors"]?.array?.first?["code"] == 10006)
    }
  }

  @Test func configurationRulesAndUnchangedRuleVersions() async throws {
    try await withSandbox { sb in
      let z = try await zoneId(sb)
      let path = "/zones/\(z)/rulesets/phases/http_config_settings/entrypoint"
      let polish: JSON = [
        "ref": "ytempire-images", "expression": "http.request.uri.path.extension eq \"jpg\"", "action": "set_config",
        "action_parameters": ["polish": "lossy"],
      ]
      let put = try await sb.cf("PUT", path, json: ["rules": [polish]])
      #expect(put.status == 200)
      let rule = try #require(put.json?["result"]?["rules"]?.array?.first)
      #expect(rule["version"] == "1")
      let wrongAction = try await sb.cf("PUT", path, json: ["rules": [["expression": "true", "action": "set_cache_settings"]]])
      #expect(wrongAction.status == 400 && wrongAction.json?["errors"]?.array?.first?["code"] == 20021)
      let badPolish = try await sb.cf(
        "PUT", path, json: ["rules": [["expression": "true", "action": "set_config", "action_parameters": ["polish": "heavy"]]]])
      #expect(badPolish.status == 400)
      // The same rule sent back (with its id) keeps its version and last_updated.
      var same = polish
      same["id"] = rule["id"]!
      let again = try await sb.cf("PUT", path, json: ["rules": [same]])
      let r2 = try #require(again.json?["result"]?["rules"]?.array?.first)
      #expect(r2["version"] == "1" && r2["last_updated"] == rule["last_updated"])
      #expect(again.json?["result"]?["version"] == "2")
      // A cache TTL over a year is refused.
      let long = try await sb.cf(
        "PUT", "/zones/\(z)/rulesets/phases/http_request_cache_settings/entrypoint",
        json: [
          "rules": [
            [
              "expression": "true", "action": "set_cache_settings",
              "action_parameters": ["cache": true, "edge_ttl": ["mode": "override_origin", "default": 31_536_001]],
            ]
          ]
        ])
      #expect(long.status == 400)
    }
  }
}
