import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import YouTubeDriver

/// The example repository, loaded as `ytempire validate` does.
enum Example {
  static var resources: [Resource] { ExampleEmpire.resources }
  static var index: DesiredIndex { DesiredIndex(resources) }
  static var pricing: Pricing { Pricing(index) }
  static var channels: [Resource] { index.all(.channel) }
  static func channel(_ name: String) -> Resource { index.resource(.channel, name)! }
}

/// A settable clock for contexts.
final class TestClock: Sendable {
  let date = Mutex(Date(timeIntervalSince1970: 1_780_000_000))
  var now: Date { date.withLock { $0 } }
  func advance(_ s: TimeInterval) { date.withLock { $0 = $0.addingTimeInterval(s) } }
}

/// One request the fake saw.
struct Seen: Sendable {
  var service: String
  var method: String
  var path: String
  var query: [String: String]
  var body: JSONValue?
  var authorization: String?
  var call: PlannedCall
  /// `channels.list`, `playlists.update`, `oauth.token`
  var operation: String {
    if service == "oauth" { return "oauth.token" }
    let resource = path.split(separator: "/").last.map(String.init) ?? ""
    switch method {
    case "GET": return "\(resource).list"
    case "POST": return "\(resource).insert"
    case "PUT": return "\(resource).update"
    default: return "\(resource).delete"
    }
  }
}

/// A fake YouTube (and OAuth endpoint) behind `ServiceClient`: stateful, recording, answering
/// errors as responses (as a plain client would) — the thrown path is the sandbox test's.
final class FakeYouTube: ServiceClient {
  struct State {
    var channels: [String: JSONValue] = [:]
    /// Playlists in listing order, each with `snippet.channelId`.
    var playlists: [JSONValue] = []
    /// access token → (expiry, channel id it acts for)
    var tokens: [String: (expires: Date, channelId: String)] = [:]
    /// refresh token → channel id
    var refreshTokens: [String: String] = [:]
    var serial = 0
    var seen: [Seen] = []
    /// Answer the next n YouTube calls 401 whatever the token.
    var force401 = 0
    var pageSize = 50
    /// One-shot answers by operation (`channels.update` → a 403).
    var scripted: [String: HTTPResponse] = [:]
  }
  let state = Mutex(State())
  let clock: TestClock
  let service: String

  init(clock: TestClock, service: String = "youtube", refreshTokens: [String: String]) {
    self.clock = clock
    self.service = service
    self.sharedState = nil
    state.withLock { $0.refreshTokens = refreshTokens }
  }

  private init(sharing other: FakeYouTube, service: String) {
    self.clock = other.clock
    self.service = service
    self.sharedState = other
  }
  private let sharedState: FakeYouTube?
  private var root: FakeYouTube { sharedState ?? self }

  /// The same fake seen as another service (the engine gives a client per service).
  func client(_ service: String) -> FakeYouTube { service == self.service ? self : FakeYouTube(sharing: root, service: service) }

  var seen: [Seen] { root.state.withLock { $0.seen } }
  func count(_ operation: String) -> Int { seen.filter { $0.operation == operation }.count }
  func clearSeen() { root.state.withLock { $0.seen = [] } }

  func addChannel(_ id: String, branding: JSONValue, extra: [String: JSONValue] = [:]) {
    var bs = extra
    bs["channel"] = branding
    root.state.withLock { $0.channels[id] = ["kind": "youtube#channel", "id": .string(id), "brandingSettings": .object(bs)] }
  }

  @discardableResult
  func addPlaylist(
    _ channelId: String, title: String, description: String = "", privacy: String = "public", tags: [String]? = nil, id: String? = nil
  ) -> String {
    root.state.withLock { s in
      s.serial += 1
      let pid = id ?? "PLfake\(s.serial)"
      var snippet: [String: JSONValue] = [
        "title": .string(title), "description": .string(description), "channelId": .string(channelId),
        "publishedAt": "2024-01-01T00:00:00Z", "thumbnails": ["default": ["url": "x"]],
      ]
      if let tags { snippet["tags"] = JSONValue(tags) }
      s.playlists.append([
        "kind": "youtube#playlist", "id": .string(pid), "snippet": .object(snippet), "status": ["privacyStatus": .string(privacy)],
      ])
      return pid
    }
  }

  func playlist(_ id: String) -> JSONValue? { root.state.withLock { s in s.playlists.first { $0["id"]?.string == id } } }
  func channelItem(_ id: String) -> JSONValue? { root.state.withLock { $0.channels[id] } }
  func playlistIds(_ channelId: String) -> [String] {
    root.state.withLock { s in s.playlists.filter { $0["snippet"]?["channelId"]?.string == channelId }.compactMap { $0["id"]?.string } }
  }
  func removePlaylist(_ id: String) { root.state.withLock { s in s.playlists.removeAll { $0["id"]?.string == id } } }
  func revokeAccessTokens() { root.state.withLock { $0.tokens = [:] } }
  func force401(_ n: Int) { root.state.withLock { $0.force401 = n } }
  func setPageSize(_ n: Int) { root.state.withLock { $0.pageSize = n } }
  func script(_ operation: String, _ response: HTTPResponse) { root.state.withLock { $0.scripted[operation] = response } }

  func send(_ request: HTTPRequest, call: PlannedCall) async throws -> HTTPResponse {
    let now = clock.now
    let comps = URLComponents(string: request.url)!
    var query: [String: String] = [:]
    for item in comps.queryItems ?? [] { query[item.name] = item.value ?? "" }
    let body = request.body.flatMap { try? JSONValue.parse($0) }
    let seen = Seen(
      service: service, method: request.method, path: comps.path, query: query, body: body,
      authorization: request.headers["Authorization"], call: call)
    return root.state.withLock { s in
      s.seen.append(seen)
      return Self.answer(seen, request: request, &s, now: now)
    }
  }

  static func json(_ status: Int, _ v: JSONValue) -> HTTPResponse {
    HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: v.canonicalBytes)
  }
  static func googleError(_ status: Int, _ reason: String, _ message: String) -> HTTPResponse {
    json(
      status,
      [
        "error": [
          "code": .int(Int64(status)), "message": .string(message), "errors": [["reason": .string(reason), "message": .string(message)]],
        ]
      ])
  }

  static func answer(_ r: Seen, request: HTTPRequest, _ s: inout State, now: Date) -> HTTPResponse {
    if r.service == "oauth" {
      let form = String(decoding: request.body ?? [], as: UTF8.self)
      var f: [String: String] = [:]
      for pair in form.split(separator: "&") {
        let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
        if kv.count == 2 { f[kv[0]] = kv[1] }
      }
      guard f["grant_type"] == "refresh_token", f["client_id"] == "client-id", f["client_secret"] == "client-secret-value" else {
        return json(401, ["error": "invalid_client", "error_description": "Unauthorized"])
      }
      guard let rt = f["refresh_token"], let owner = s.refreshTokens[rt] else {
        return json(400, ["error": "invalid_grant", "error_description": "Token has been expired or revoked."])
      }
      s.serial += 1
      let tok = "ya29.fake-\(s.serial)"
      s.tokens[tok] = (now.addingTimeInterval(3599), owner)
      return json(200, ["access_token": .string(tok), "expires_in": 3599, "token_type": "Bearer"])
    }
    let bearer = r.authorization.flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
    if s.force401 > 0 || bearer == nil || (s.tokens[bearer!].map { $0.expires <= now } ?? true) {
      if s.force401 > 0 { s.force401 -= 1 }
      return googleError(401, "authError", "Request had invalid authentication credentials.")
    }
    let caller = s.tokens[bearer!]!.channelId
    if let scripted = s.scripted.removeValue(forKey: r.operation) { return scripted }
    switch r.operation {
    case "channels.list":
      let ids = (r.query["id"] ?? "").split(separator: ",").map(String.init)
      if ids.count > 50 { return googleError(400, "invalidValue", "too many ids") }
      let items = ids.compactMap { s.channels[$0] }
      return json(200, ["kind": "youtube#channelListResponse", "items": .array(items)])
    case "channels.update":
      guard let b = r.body, let id = b["id"]?.string, var ch = s.channels[id] else {
        return googleError(404, "channelNotFound", "no such channel")
      }
      guard id == caller else { return googleError(403, "forbidden", "another channel") }
      guard case .object(var o) = ch else { fatalError() }
      o["brandingSettings"] = b["brandingSettings"]
      ch = .object(o)
      s.channels[id] = ch
      return json(200, ["kind": "youtube#channel", "id": .string(id), "brandingSettings": b["brandingSettings"] ?? .null])
    case "playlists.list":
      guard let cid = r.query["channelId"], s.channels[cid] != nil else { return googleError(404, "channelNotFound", "no such channel") }
      let all = s.playlists.filter { $0["snippet"]?["channelId"]?.string == cid }
      let per = min(Int(r.query["maxResults"] ?? "5") ?? 5, s.pageSize)
      let offset = Int(r.query["pageToken"]?.dropFirst(4) ?? "0") ?? 0
      let end = min(all.count, offset + per)
      // part=contentDetails: itemCount (the fake's playlists hold no videos unless a test says so).
      let withCount = (r.query["part"] ?? "").split(separator: ",").contains("contentDetails")
      let items = all[offset..<end].map { p -> JSONValue in
        guard withCount, var o = p.object, o["contentDetails"] == nil else { return p }
        o["contentDetails"] = ["itemCount": 0]
        return .object(o)
      }
      var o: [String: JSONValue] = ["kind": "youtube#playlistListResponse", "items": .array(items)]
      if end < all.count { o["nextPageToken"] = .string("page\(end)") }
      return json(200, .object(o))
    case "playlists.insert":
      guard let b = r.body, let title = b["snippet"]?["title"]?.string else { return googleError(400, "playlistTitleRequired", "title") }
      s.serial += 1
      let pid = "PLnew\(s.serial)"
      var snippet = b["snippet"]!.object!
      snippet["title"] = .string(title)
      snippet["description"] = snippet["description"] ?? ""
      snippet["channelId"] = .string(caller)
      let p: JSONValue = [
        "kind": "youtube#playlist", "id": .string(pid), "snippet": .object(snippet),
        "status": ["privacyStatus": b["status"]?["privacyStatus"] ?? "public"],
      ]
      s.playlists.append(p)
      return json(200, p)
    case "playlists.update":
      guard let b = r.body, let pid = b["id"]?.string, let i = s.playlists.firstIndex(where: { $0["id"]?.string == pid }) else {
        return googleError(404, "playlistNotFound", "no such playlist")
      }
      var snippet = b["snippet"]?.object ?? [:]
      snippet["description"] = snippet["description"] ?? ""
      snippet["channelId"] = s.playlists[i]["snippet"]?["channelId"]
      let p: JSONValue = [
        "kind": "youtube#playlist", "id": .string(pid), "snippet": .object(snippet),
        "status": ["privacyStatus": b["status"]?["privacyStatus"] ?? "public"],
      ]
      s.playlists[i] = p
      return json(200, p)
    case "playlists.delete":
      guard let pid = r.query["id"], let i = s.playlists.firstIndex(where: { $0["id"]?.string == pid }) else {
        return googleError(404, "playlistNotFound", "no such playlist")
      }
      s.playlists.remove(at: i)
      return HTTPResponse(status: 204)
    default:
      return googleError(501, "notImplemented", r.operation)
    }
  }
}
