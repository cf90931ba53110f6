import Basics
import CurlHTTP
import DriverKit
import Foundation

/// OAuth access tokens per credentials name: kept in memory and in the engine's state store
/// (`youtube.token.<credentials>`, with its expiry) until `margin` before they expire; one
/// refresh at a time per name (concurrent callers wait for the same refresh).
actor TokenCache {
  struct Entry: Sendable {
    var token: String
    var expires: Date
  }

  let config: YouTubeDriverConfig
  private var memory: [String: Entry] = [:]
  private var inflight: [String: Task<Entry, any Error>] = [:]

  init(config: YouTubeDriverConfig) { self.config = config }

  static func cacheKey(_ credentials: String) -> String { "youtube.token.\(credentials)" }

  /// The OAuth call: no unit quota, no channel.
  static let call = PlannedCall(service: "oauth", operation: "token", units: 0, quota: nil, channel: nil)

  private func fresh(_ e: Entry, now: Date) -> Bool { e.expires.timeIntervalSince(now) > config.tokenMargin }

  /// A live access token for `credentials` (the secret name of a Channel's `spec.youtube.credentials`).
  func token(_ credentials: String, channel: String?, context: DriverContext) async throws -> String {
    let now = context.now()
    if let e = memory[credentials], fresh(e, now: now) { return e.token }
    if let stored = try? context.cache.value(Self.cacheKey(credentials)), let expires = stored.expires {
      let e = Entry(token: stored.value, expires: expires)
      if fresh(e, now: now) {
        memory[credentials] = e
        return e.token
      }
    }
    if let t = inflight[credentials] { return try await t.valueCancelledWithWaiter.token }
    let config = self.config
    let task = Task { try await Self.refresh(config: config, credentials: credentials, channel: channel, context: context) }
    inflight[credentials] = task
    defer { inflight[credentials] = nil }
    let e = try await task.valueCancelledWithWaiter
    memory[credentials] = e
    do { try context.cache.setValue(Self.cacheKey(credentials), e.token, expires: e.expires) } catch {
      context.log("youtube: could not keep the access token of \(credentials) in the state store: \(type(of: error))")
    }
    return e.token
  }

  /// Forgets the token of `credentials` (after YouTube answered 401 with it).
  func drop(_ credentials: String, context: DriverContext) {
    memory[credentials] = nil
    try? context.cache.setValue(Self.cacheKey(credentials), nil, expires: nil)
  }

  /// `POST tokenEndpoint` with the refresh token (form client_id, client_secret, refresh_token, grant_type).
  static func refresh(config: YouTubeDriverConfig, credentials: String, channel: String?, context: DriverContext) async throws -> Entry {
    func fail(_ reason: String, _ message: String, status: Int? = nil) -> YouTubeError {
      YouTubeError(operation: "oauth.token", channel: channel, status: status, reason: reason, message: message)
    }
    guard let secret = config.credentials(credentials) else {
      throw fail("credentialsNotConfigured", "no secret named \(credentials) in the reconciler config (secrets:)")
    }
    func resolve(_ s: LazySecret) throws -> String {
      do { return try s.resolve() } catch let e as SecretUnavailable {
        throw fail("secretUnavailable", e.description)
      } catch {
        throw fail("secretUnavailable", "secret \(s.name) could not be read")
      }
    }
    let refreshToken = try resolve(secret)
    let clientId = try resolve(config.clientId)
    let clientSecret = try resolve(config.clientSecret)
    let secrets = [refreshToken, clientSecret]
    let form = Form.encode([
      ("client_id", clientId), ("client_secret", clientSecret),
      ("refresh_token", refreshToken), ("grant_type", "refresh_token"),
    ])
    let request = HTTPRequest(
      method: "POST", url: config.tokenEndpoint,
      headers: ["Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"],
      body: Array(form.utf8))
    let response: HTTPResponse
    do {
      response = try await context.client("oauth").send(request, call: call)
    } catch let e where CallFailure(e) != nil {
      let f = CallFailure(e)!
      throw fail(f.reason ?? "HTTP \(f.status ?? 0)", ErrorText.scrub(f.message, secrets), status: f.status)
    }
    guard (200..<300).contains(response.status) else {
      let (reason, message) = ErrorText.parse(response.body, status: response.status)
      throw fail(reason, ErrorText.scrub(message, secrets), status: response.status)
    }
    guard let v = try? JSONValue.parse(response.body), let token = v["access_token"]?.string, !token.isEmpty else {
      throw fail("malformedResponse", "the token endpoint answered without an access_token", status: response.status)
    }
    // Range-checked where it comes in: Google's tokens live an hour; a negative or absurd
    // lifetime is held to [0, 1 day] (0: the token is refreshed before its next use).
    let lifetime = Double(min(max(v["expires_in"]?.int ?? 3600, 0), 86_400))
    return Entry(token: token, expires: context.now().addingTimeInterval(lifetime))
  }
}

enum Form {
  static func encode(_ fields: [(String, String)]) -> String {
    fields.map { "\(PercentEncoding.encode($0.0))=\(PercentEncoding.encode($0.1))" }.joined(separator: "&")
  }
}
