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
  /// Refused: nothing changes. `status` is the HTTP answer (401 signature, 409 replay, 400, 413).
  case rejected(status: Int, message: String)

  public var status: Int {
    switch self {
    case .trigger: 202
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
