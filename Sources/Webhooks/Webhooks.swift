import Crypto
import DriverKit
import Foundation
import Synchronization

/// What a webhook delivery asks for.
public enum WebhookVerdict: Sendable, Equatable {
  /// A push to the configured ref: reconcile now.
  case trigger(String)
  /// A valid delivery that needs nothing (`ping`, a push to another ref, another event).
  case accepted(String)
  /// A pull request (merge request) opened or pushed to: plan its head, never apply it.
  case pullRequest(PullRequestEvent)
  /// Refused: nothing changes. `status` is the HTTP answer (401 signature, 409 replay, 400, 413).
  case rejected(status: Int, message: String)

  public var status: Int {
    switch self {
    case .trigger, .pullRequest: 202
    case .accepted: 200
    case .rejected(let s, _): s
    }
  }
}

/// The most recent `capacity` keys seen: inserting one more forgets the oldest.
struct RecentKeys<Key: Hashable & Sendable>: Sendable {
  let capacity: Int
  private var set: Set<Key> = []
  private var order: [Key] = []
  init(capacity: Int) { self.capacity = capacity }

  /// false when `key` is among the remembered ones (a replay).
  mutating func insert(_ key: Key) -> Bool {
    guard set.insert(key).inserted else { return false }
    order.append(key)
    if order.count > capacity { set.remove(order.removeFirst()) }
    return true
  }
}

/// Checks GitHub (`X-Hub-Signature-256`) and GitLab (`X-Gitlab-Token`) push webhooks. Secrets
/// are compared in constant time; only pushes to the configured ref trigger a reconcile.
/// Replays are refused (409) from a bounded memory of recent deliveries: GitHub delivery ids,
/// and the sha256 of every authenticated body, since neither GitHub's signature nor GitLab's
/// token covers the delivery id — the same signed body under a new `X-GitHub-Delivery` is a replay.
public final class WebhookGate: Sendable {
  public static let maxBodyBytes = 1 << 20
  public static let rememberedDeliveries = 4096

  let githubSecret: [UInt8]?
  let gitlabToken: [UInt8]?
  /// The source's ref as configured (`main`, `refs/heads/main`, a tag); nil: any push.
  let ref: String?
  private let seen = Mutex(RecentKeys<String>(capacity: rememberedDeliveries))
  /// sha256 of the bodies of recent authenticated deliveries (32 bytes each).
  private let seenBodies = Mutex(RecentKeys<[UInt8]>(capacity: rememberedDeliveries))

  public init(githubSecret: [UInt8]?, gitlabToken: [UInt8]?, ref: String?) {
    self.githubSecret = githubSecret
    self.gitlabToken = gitlabToken
    self.ref = ref
  }

  /// Whether a pushed ref is the one the source follows.
  public func matches(_ pushed: String) -> Bool {
    guard let ref else { return true }
    return pushed == ref || pushed == "refs/heads/" + ref || pushed == "refs/tags/" + ref
  }

  /// `sha256=<hex>` of HMAC-SHA256(secret, body).
  public static func githubSignature(secret: [UInt8], body: [UInt8]) -> String {
    let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: secret))
    return "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
  }

  /// Constant-time equality (the length is not secret).
  static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for i in a.indices { diff |= a[i] ^ b[i] }
    return diff == 0
  }

  /// `headers` with lowercased names.
  public func github(headers: [String: String], body: [UInt8]) -> WebhookVerdict {
    guard let secret = githubSecret else {
      return .rejected(status: 404, message: "GitHub webhooks are not configured (serve.webhooks.github)")
    }
    guard body.count <= Self.maxBodyBytes else { return .rejected(status: 413, message: "body larger than \(Self.maxBodyBytes) bytes") }
    guard let sig = headers["x-hub-signature-256"], sig.hasPrefix("sha256="), sig.utf8.count == 71 else {
      return .rejected(status: 401, message: "missing or malformed X-Hub-Signature-256")
    }
    let want = Self.githubSignature(secret: secret, body: body)
    guard Self.equal(Array(sig.lowercased().utf8), Array(want.utf8)) else {
      return .rejected(status: 401, message: "signature does not match")
    }
    let event = headers["x-github-event"] ?? ""
    if let delivery = headers["x-github-delivery"], !delivery.isEmpty {
      guard delivery.utf8.count <= 128 else { return .rejected(status: 400, message: "X-GitHub-Delivery too long") }
      guard seen.withLock({ $0.insert(delivery) }) else {
        return .rejected(status: 409, message: "delivery \(delivery) was already received (replay)")
      }
    } else {
      return .rejected(status: 400, message: "missing X-GitHub-Delivery")
    }
    guard firstTime(body) else {
      return .rejected(
        status: 409, message: "this signed body was already received in an earlier delivery (replay under a new X-GitHub-Delivery)")
    }
    switch event {
    case "ping": return .accepted("pong")
    case "pull_request": return PullRequestEvent.github(body)
    case "push":
      guard let pushed = Self.pushedRef(body) else { return .rejected(status: 400, message: "push event without a ref") }
      return matches(pushed)
        ? .trigger("github push to \(pushed)") : .accepted("push to \(pushed) ignored (the source follows \(ref ?? "HEAD"))")
    default:
      return .accepted("event \(event.isEmpty ? "(none)" : event) ignored")
    }
  }

  public func gitlab(headers: [String: String], body: [UInt8]) -> WebhookVerdict {
    guard let token = gitlabToken else {
      return .rejected(status: 404, message: "GitLab webhooks are not configured (serve.webhooks.gitlab)")
    }
    guard body.count <= Self.maxBodyBytes else { return .rejected(status: 413, message: "body larger than \(Self.maxBodyBytes) bytes") }
    guard let given = headers["x-gitlab-token"], Self.equal(Array(given.utf8), token) else {
      return .rejected(status: 401, message: "missing or wrong X-Gitlab-Token")
    }
    let event = headers["x-gitlab-event"] ?? ""
    if event == "Merge Request Hook" {
      guard firstTime(body) else { return .rejected(status: 409, message: "this merge request body was already received (replay)") }
      return PullRequestEvent.gitlab(body)
    }
    guard event == "Push Hook" || event == "Tag Push Hook" else { return .accepted("event \(event.isEmpty ? "(none)" : event) ignored") }
    guard let pushed = Self.pushedRef(body) else { return .rejected(status: 400, message: "push event without a ref") }
    guard firstTime(body) else { return .rejected(status: 409, message: "this push body was already received (replay)") }
    return matches(pushed)
      ? .trigger("gitlab push to \(pushed)") : .accepted("push to \(pushed) ignored (the source follows \(ref ?? "HEAD"))")
  }

  /// Remembers the body's sha256; false when a recent authenticated delivery had the same body.
  private func firstTime(_ body: [UInt8]) -> Bool {
    let hash = Array(SHA256.hash(data: body))
    return seenBodies.withLock { $0.insert(hash) }
  }

  /// The `ref` of a push payload (GitHub and GitLab both carry it at the top level).
  static func pushedRef(_ body: [UInt8]) -> String? {
    // Depth-limited: a body of a million '[' is refused, not recursed into.
    guard let v = try? JSONValue.parse(body, maxDepth: 32), let ref = v["ref"]?.string, !ref.isEmpty, ref.utf8.count <= 1024 else {
      return nil
    }
    return ref
  }
}

/// A pull request to plan (DESIGN A10 "Events"): its number, the head commit and the ref it is
/// fetched by. One from a fork is planned the same way, and nothing is ever applied from it.
public struct PullRequestEvent: Sendable, Equatable {
  public enum Forge: String, Sendable { case github, gitlab }
  public var forge: Forge
  /// GitHub's pull request number, GitLab's merge request iid.
  public var number: Int
  /// The head commit (40 hex digits).
  public var head: String
  /// `refs/pull/<n>/head` or `refs/merge-requests/<n>/head`.
  public var ref: String
  public var fromFork: Bool
  public var action: String

  public init(forge: Forge, number: Int, head: String, ref: String, fromFork: Bool, action: String) {
    self.forge = forge
    self.number = number
    self.head = head
    self.ref = ref
    self.fromFork = fromFork
    self.action = action
  }

  static let maxNumber = 1 << 31

  static func isSHA(_ s: String) -> Bool {
    s.utf8.count == 40 && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
  }

  /// `X-GitHub-Event: pull_request`: opened, synchronize and reopened are planned; other actions are accepted and ignored.
  static func github(_ body: [UInt8]) -> WebhookVerdict {
    guard let v = try? JSONValue.parse(body, maxDepth: 32) else { return .rejected(status: 400, message: "pull_request body is not JSON") }
    let action = v["action"]?.string ?? ""
    guard ["opened", "synchronize", "reopened"].contains(action) else {
      return .accepted("pull_request \(action.isEmpty ? "(no action)" : String(action.prefix(40))) ignored")
    }
    guard let n64 = v["number"]?.int, n64 >= 1, n64 < Int64(maxNumber) else {
      return .rejected(status: 400, message: "pull_request without a number from 1 to \(maxNumber - 1)")
    }
    let n = Int(n64)
    guard let pr = v["pull_request"], let sha = pr["head"]?["sha"]?.string, isSHA(sha) else {
      return .rejected(status: 400, message: "pull_request without a head sha of 40 hexadecimal digits")
    }
    let headRepo = pr["head"]?["repo"]?["full_name"]?.string
    let baseRepo = pr["base"]?["repo"]?["full_name"]?.string ?? v["repository"]?["full_name"]?.string
    return .pullRequest(
      PullRequestEvent(
        forge: .github, number: n, head: sha, ref: "refs/pull/\(n)/head", fromFork: headRepo == nil || headRepo != baseRepo,
        action: action))
  }

  /// `X-Gitlab-Event: Merge Request Hook`: open, update and reopen are planned.
  static func gitlab(_ body: [UInt8]) -> WebhookVerdict {
    guard let v = try? JSONValue.parse(body, maxDepth: 32) else { return .rejected(status: 400, message: "merge request body is not JSON") }
    guard let a = v["object_attributes"] else { return .rejected(status: 400, message: "merge request hook without object_attributes") }
    let action = a["action"]?.string ?? ""
    guard ["open", "update", "reopen"].contains(action) else {
      return .accepted("merge request \(action.isEmpty ? "(no action)" : String(action.prefix(40))) ignored")
    }
    guard let n64 = a["iid"]?.int, n64 >= 1, n64 < Int64(maxNumber) else {
      return .rejected(status: 400, message: "merge request without an iid from 1 to \(maxNumber - 1)")
    }
    let n = Int(n64)
    guard let sha = a["last_commit"]?["id"]?.string, isSHA(sha) else {
      return .rejected(status: 400, message: "merge request without last_commit.id of 40 hexadecimal digits")
    }
    let fork = a["source_project_id"]?.int != a["target_project_id"]?.int
    return .pullRequest(
      PullRequestEvent(forge: .gitlab, number: n, head: sha, ref: "refs/merge-requests/\(n)/head", fromFork: fork, action: action))
  }
}
