import Foundation

/// What the notification emulators received (API-NOTES "Notification sinks"): GitHub commit
/// statuses and issue comments, Slack incoming-webhook messages, and every request to
/// `/hooks/…` (signed webhooks, Discord, Teams, Alertmanager). Kept in memory only: a restarted
/// sandbox starts with none. Each list keeps its newest `limit` entries.
struct NotifyState: Sendable {
  static let limit = 1000
  var statuses: [JSON] = []
  /// "owner/repo#n" → comments, oldest first.
  var comments: [String: [JSON]] = [:]
  var slack: [JSON] = []
  var hooks: [JSON] = []
  var nextID = 1
  /// GitHub's primary rate limit: requests in the current hour.
  var githubUsed = 0
  var githubWindowStart = 0.0
  var githubLimit = 5000

  mutating func id() -> Int {
    defer { nextID += 1 }
    return nextID
  }

  static func append(_ list: inout [JSON], _ v: JSON) {
    list.append(v)
    if list.count > limit { list.removeFirst(list.count - limit) }
  }

  var json: JSON {
    [
      "github": ["statuses": .array(statuses), "comments": .object(comments.mapValues { .array($0) })],
      "slack": .array(slack), "hooks": .array(hooks),
    ]
  }
}

extension SandboxCredentials {
  /// The token the GitHub emulator accepts (`Authorization: Bearer …`).
  public static let githubToken = "sandbox-github-token"
  /// The Slack emulator's one incoming webhook: `/slack/services/<this>`.
  public static let slackHookPath = "T0SANDBOX/B0SANDBOX/sandbox-slack-hook-secret"
}

enum NotifyEmulator {
  // MARK: GitHub

  static func github(_ r: SandboxRequest, _ s: inout NotifyState, now: Date) -> SandboxResponse {
    let t = now.timeIntervalSince1970
    if t - s.githubWindowStart >= 3600 {
      s.githubWindowStart = t
      s.githubUsed = 0
    }
    let reset = Int(s.githubWindowStart + 3600)
    func headers() -> [(String, String)] {
      [
        ("x-ratelimit-limit", String(s.githubLimit)), ("x-ratelimit-remaining", String(max(0, s.githubLimit - s.githubUsed))),
        ("x-ratelimit-reset", String(reset)), ("x-ratelimit-used", String(s.githubUsed)),
      ]
    }
    func fail(_ status: Int, _ message: String) -> SandboxResponse {
      .json(status, ["message": .string(message), "documentation_url": "https://docs.github.com/rest"], headers: headers())
    }
    guard r.headers["authorization"] == "Bearer \(SandboxCredentials.githubToken)" else { return fail(401, "Bad credentials") }
    if s.githubUsed >= s.githubLimit {
      return fail(403, "API rate limit exceeded for user. Check out the documentation for more information.")
    }
    s.githubUsed += 1
    let segs = r.path.split(separator: "/").map(String.init)  // github repos o r …
    guard segs.count >= 5, segs[1] == "repos" else { return fail(404, "Not Found") }
    let repo = "\(segs[2])/\(segs[3])"
    let rest = Array(segs[4...])
    let stamp = Timestamp.rfc3339(now, digits: 0)
    switch (r.method, rest.count, rest.first) {
    case ("POST", 2, "statuses"):
      let sha = rest[1]
      guard sha.utf8.count == 40, sha.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
        return fail(422, "No commit found for SHA: \(sha)")
      }
      guard case .object(let o)? = r.json, let state = o["state"]?.string, ["pending", "success", "failure", "error"].contains(state)
      else {
        return fail(422, "Validation Failed: state must be one of pending, success, failure, error")
      }
      if let d = o["description"]?.string, d.count > 140 {
        return fail(422, "Validation Failed: description is too long (maximum is 140 characters)")
      }
      let status: JSON = [
        "id": .int(s.id()), "repository": .string(repo), "sha": .string(sha), "state": .string(state),
        "description": o["description"] ?? .null, "context": o["context"] ?? "default", "target_url": o["target_url"] ?? .null,
        "created_at": .string(stamp),
      ]
      NotifyState.append(&s.statuses, status)
      return .json(201, status, headers: headers())
    case ("GET", 3, "commits") where rest[2] == "statuses":
      let list = s.statuses.filter { $0["repository"]?.string == repo && $0["sha"]?.string == rest[1] }.reversed()
      return .json(200, .array(Array(list)), headers: headers())
    case ("GET", 3, "issues") where rest[2] == "comments":
      let all = s.comments["\(repo)#\(rest[1])"] ?? []
      let perPage = min(max(Int(r.q("per_page") ?? "30") ?? 30, 1), 100)
      let page = max(Int(r.q("page") ?? "1") ?? 1, 1)
      let start = min((page - 1).multipliedReportingOverflow(by: perPage).partialValue, all.count)
      let slice = Array(all[max(0, start)..<min(all.count, max(0, start) + perPage)])
      var h = headers()
      if start + perPage < all.count {
        h.append(("Link", "<\(r.path)?per_page=\(perPage)&page=\(page + 1)>; rel=\"next\""))
      }
      return .json(200, .array(slice), headers: h)
    case ("POST", 3, "issues") where rest[2] == "comments":
      guard case .object(let o)? = r.json, let body = o["body"]?.string, !body.isEmpty else {
        return fail(422, "Validation Failed: body is missing")
      }
      guard body.utf8.count <= 65536 else { return fail(422, "Validation Failed: body is too long (maximum is 65536 characters)") }
      let id = s.id()
      let c: JSON = [
        "id": .int(id), "body": .string(body), "user": ["login": "ytempire[bot]"], "created_at": .string(stamp),
        "updated_at": .string(stamp), "html_url": .string("https://github.com/\(repo)/pull/\(rest[1])#issuecomment-\(id)"),
      ]
      s.comments["\(repo)#\(rest[1])", default: []].append(c)
      return .json(201, c, headers: headers())
    case ("PATCH", 3, "issues") where rest[1] == "comments":
      guard let id = Int(rest[2]) else { return fail(404, "Not Found") }
      guard case .object(let o)? = r.json, let body = o["body"]?.string, !body.isEmpty else {
        return fail(422, "Validation Failed: body is missing")
      }
      for (key, list) in s.comments where key.hasPrefix(repo + "#") {
        if let i = list.firstIndex(where: { $0["id"]?.int == id }), case .object(var c) = list[i] {
          c["body"] = .string(body)
          c["updated_at"] = .string(stamp)
          s.comments[key]![i] = .object(c)
          return .json(200, .object(c), headers: headers())
        }
      }
      return fail(404, "Not Found")
    default:
      return fail(404, "Not Found")
    }
  }

  // MARK: Slack

  static func slack(_ r: SandboxRequest, _ s: inout NotifyState, now: Date) -> SandboxResponse {
    func text(_ status: Int, _ t: String) -> SandboxResponse {
      SandboxResponse(status: status, headers: [("Content-Type", "text/plain; charset=utf-8")], body: Array(t.utf8))
    }
    guard r.path == "/slack/services/" + SandboxCredentials.slackHookPath else { return text(404, "no_service") }
    guard r.method == "POST" else { return text(405, "invalid_method") }
    guard case .object(let o)? = r.json, let t = o["text"]?.string, !t.isEmpty else { return text(400, "invalid_payload") }
    NotifyState.append(&s.slack, ["text": .string(t), "received_at": .string(Timestamp.rfc3339(now, digits: 0))])
    return text(200, "ok")
  }

  // MARK: any other receiver

  /// `/hooks/<name>…`: records the request (headers with their values, the body as text) and
  /// answers as the receivers do: 204 for a Discord-style path ending in `/discord`, else 200 `{}`.
  static func hook(_ r: SandboxRequest, _ s: inout NotifyState, now: Date) -> SandboxResponse {
    let headers = JSON.object(r.headers.filter { $0.key.hasPrefix("x-") || $0.key == "content-type" }.mapValues { .string($0) })
    NotifyState.append(
      &s.hooks,
      [
        "method": .string(r.method), "path": .string(r.path), "headers": headers,
        "body": .string(String(decoding: r.body, as: UTF8.self)), "received_at": .string(Timestamp.rfc3339(now, digits: 0)),
      ])
    if r.path.hasSuffix("/discord") { return .empty(204) }
    return .json(200, [:])
  }
}
