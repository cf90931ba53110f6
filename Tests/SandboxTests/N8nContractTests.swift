import Foundation
import Testing

@testable import Sandbox

let scheduleNode: JSON = [
  "id": "t1", "name": "Every 8h", "type": "n8n-nodes-base.scheduleTrigger", "typeVersion": 1.2, "position": [0, 0],
  "parameters": ["rule": ["interval": [["field": "hours", "hoursInterval": 8, "triggerAtMinute": 0]]]],
]
let httpNode: JSON = [
  "id": "h1", "name": "Call", "type": "n8n-nodes-base.httpRequest", "typeVersion": 4, "position": [200, 0], "parameters": [:],
]

func workflowBody(_ name: String, trigger: Bool = true) -> JSON {
  [
    "name": .string(name),
    "nodes": trigger ? [scheduleNode, httpNode] : [httpNode],
    "connections": trigger ? ["Every 8h": ["main": [[["node": "Call", "type": "main", "index": 0]]]]] : [:],
    "settings": ["executionOrder": "v1", "timezone": "America/Los_Angeles", "saveDataErrorExecution": "all"],
  ]
}

@Suite struct N8nContractTests {
  @Test func apiKeyIsRequired() async throws {
    try await withSandbox { sb in
      let none = try await sb.call("GET", "/api/v1/workflows")
      #expect(none.status == 401)
      #expect(none.json == ["message": "'X-N8N-API-KEY' header required"])
      let wrong = try await sb.call("GET", "/api/v1/workflows", headers: ["X-N8N-API-KEY": "nope"])
      #expect(wrong.status == 401)
      #expect(wrong.json == ["message": "unauthorized"])
    }
  }

  @Test func createReadReplaceDelete() async throws {
    try await withSandbox { sb in
      let c = try await sb.n8n("POST", "/workflows", json: workflowBody("ytempire/content-generation"))
      #expect(c.status == 200, "POST answers 200, not 201: \(c.text)")
      let wf = try #require(c.json)
      let id = try #require(wf["id"]?.string)
      #expect(wf["active"] == false)
      #expect(wf["versionId"]?.string != nil)
      #expect(wf["createdAt"]?.string?.hasSuffix("Z") == true)
      #expect(wf["connections"] == workflowBody("x")["connections"])

      let got = try await sb.n8n("GET", "/workflows/\(id)")
      #expect(got.json == wf)

      var replaced = workflowBody("ytempire/content-generation")
      replaced["settings"] = ["executionOrder": "v1"]
      let put = try await sb.n8n("PUT", "/workflows/\(id)", json: replaced)
      #expect(put.status == 200)
      #expect(put.json?["settings"] == ["executionOrder": "v1"], "PUT replaces the settings")
      #expect(put.json?["versionId"] != wf["versionId"])

      let del = try await sb.n8n("DELETE", "/workflows/\(id)")
      #expect(del.status == 200)
      #expect(del.json?["id"]?.string == id)
      let gone = try await sb.n8n("GET", "/workflows/\(id)")
      #expect(gone.status == 404)
      #expect(gone.json == ["message": "Not Found"])
    }
  }

  @Test func bodySchemaIsClosed() async throws {
    try await withSandbox { sb in
      var ro = workflowBody("x")
      ro["active"] = true
      let r1 = try await sb.n8n("POST", "/workflows", json: ro)
      #expect(r1.status == 400)
      #expect(r1.json == ["message": "request/body/active is read-only"])

      var tags = workflowBody("x")
      tags["tags"] = [["id": "1"]]
      let r2 = try await sb.n8n("POST", "/workflows", json: tags)
      #expect(r2.json == ["message": "request/body/tags is read-only"])

      var extra = workflowBody("x")
      extra["owner"] = "me"
      let r3 = try await sb.n8n("POST", "/workflows", json: extra)
      #expect(r3.status == 400)
      #expect(r3.json == ["message": "request/body must NOT have additional properties"])

      var settings = workflowBody("x")
      settings["settings"] = ["executionOrder": "v1", "retries": 3]
      let r4 = try await sb.n8n("POST", "/workflows", json: settings)
      #expect(r4.status == 400)
      #expect(r4.json == ["message": "request/body/settings must NOT have additional properties"])

      var badEnum = workflowBody("x")
      badEnum["settings"] = ["saveDataErrorExecution": "sometimes"]
      let r5 = try await sb.n8n("POST", "/workflows", json: badEnum)
      #expect(r5.status == 400)

      var missing = workflowBody("x")
      missing["settings"] = nil
      let r6 = try await sb.n8n("POST", "/workflows", json: missing)
      #expect(r6.json == ["message": "request/body must have required property 'settings'"])

      let notJSON = try await sb.n8n("POST", "/workflows", raw: Array("[1,".utf8))
      #expect(notJSON.status == 400)
    }
  }

  @Test func listFiltersAndCursorPagination() async throws {
    try await withSandbox { sb in
      for i in 0..<5 { _ = try await sb.n8n("POST", "/workflows", json: workflowBody("wf\(i)")) }
      // 5 created + 1 seeded by hand.
      let p1 = try await sb.n8n("GET", "/workflows?limit=4")
      #expect(p1.status == 200)
      #expect(p1.json?["data"]?.array?.count == 4)
      let cursor = try #require(p1.json?["nextCursor"]?.string)
      let p2 = try await sb.n8n("GET", "/workflows?cursor=\(cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)")
      #expect(p2.json?["data"]?.array?.count == 2)
      #expect(p2.json?["nextCursor"] == .null)
      let unencoded = try await sb.n8n("GET", "/workflows?cursor=\(cursor)")
      #expect(unencoded.json?["data"]?.array?.count == 2, "an unencoded cursor works too")
      let tooBig = try await sb.n8n("GET", "/workflows?limit=251")
      #expect(tooBig.status == 400)
      #expect(tooBig.json == ["message": "request/query/limit must be <= 250"])
      let badCursor = try await sb.n8n("GET", "/workflows?cursor=zzz")
      #expect(badCursor.status == 400)

      // Tags: create (201), conflict (409), attach, filter.
      let t = try await sb.n8n("POST", "/tags", json: ["name": "ytempire"])
      #expect(t.status == 201)
      let tagId = try #require(t.json?["id"]?.string)
      let dup = try await sb.n8n("POST", "/tags", json: ["name": "ytempire"])
      #expect(dup.status == 409)
      let id = try #require(p1.json?["data"]?.array?.last?["id"]?.string)
      let attach = try await sb.n8n("PUT", "/workflows/\(id)/tags", json: [["id": .string(tagId)]])
      #expect(attach.status == 200)
      #expect(attach.json?.array?.first?["name"] == "ytempire")
      let byTag = try await sb.n8n("GET", "/workflows?tags=ytempire")
      #expect(byTag.json?["data"]?.array?.map { $0["id"] } == [.string(id)])
      let unknownTag = try await sb.n8n("PUT", "/workflows/\(id)/tags", json: [["id": "nope"]])
      #expect(unknownTag.status == 404)
      let active = try await sb.n8n("GET", "/workflows?active=true")
      #expect(active.json?["data"]?.array?.isEmpty == true)
    }
  }

  @Test func activationNeedsATrigger() async throws {
    try await withSandbox { sb in
      let plain = try await sb.n8n("POST", "/workflows", json: workflowBody("plain", trigger: false))
      let pid = try #require(plain.json?["id"]?.string)
      let refused = try await sb.n8n("POST", "/workflows/\(pid)/activate")
      #expect(refused.status == 400)
      #expect(refused.json?["message"]?.string?.contains("trigger") == true)

      let sched = try await sb.n8n("POST", "/workflows", json: workflowBody("sched"))
      let sid = try #require(sched.json?["id"]?.string)
      let on = try await sb.n8n("POST", "/workflows/\(sid)/activate")
      #expect(on.status == 200)
      #expect(on.json?["active"] == true)
      let off = try await sb.n8n("POST", "/workflows/\(sid)/deactivate")
      #expect(off.json?["active"] == false)
      let missing = try await sb.n8n("POST", "/workflows/nope/activate")
      #expect(missing.status == 404)
    }
  }
}
