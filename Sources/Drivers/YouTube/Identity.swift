import Crypto
import DriverKit
import EmpireModel
import Foundation

/// Which channel a credential acts for (DESIGN A10 "Credentials that cannot act for their
/// channel"). A refresh token acts for one channel; a Channel whose credentials act for
/// another is Stalled at plan time, and nothing is written for it. Learned with
/// `channels.list?part=id&mine=true` (1 unit), remembered in the state store under a key that
/// holds a digest of the refresh token: a changed credential is asked again.
extension YouTubeDriver {
  /// The observed state's field that says a channel's credentials act for another channel.
  static let actsForField = "credentialsActFor"

  /// `youtube.actsFor.<credentials>.<16 hex of sha256(refresh token)>`; nil when the secret cannot be read.
  func identityKey(_ credentials: String) -> String? {
    guard let token = try? config.credentials(credentials)?.resolve() else { return nil }
    let digest = SHA256.hash(data: Array(token.utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
    return "youtube.actsFor.\(credentials).\(digest)"
  }

  /// The credentials among `entries` (desired channels only: only they get writes) whose
  /// channel is not known yet, each with the entry that pays for asking.
  /// Without a cache to remember answers in, nothing is asked (it would cost a unit per
  /// credential on every plan); the workspace always gives the state store.
  func unknownIdentities(_ entries: [Entry], cache: (any DriverCache)?) -> [(credentials: String, payer: Entry)] {
    guard let cache else { return [] }
    var seen = Set<String>()
    var out: [(String, Entry)] = []
    for e in entries where e.desired != nil {
      guard let c = e.credentials, seen.insert(c).inserted else { continue }
      if let key = identityKey(c), (try? cache.value(key)) != nil { continue }
      out.append((c, e))
    }
    return out
  }

  /// The channel each credential of `entries` acts for: from `config.cache`, else asked (the
  /// same cache the observation's price was made with, so what is spent is what was priced).
  /// A credential that cannot be asked is left out (its own calls will say why).
  func identities(_ entries: [Entry], context: DriverContext) async throws -> [String: String] {
    var known: [String: String] = [:]
    let cache = config.cache
    for e in entries where e.desired != nil {
      guard let c = e.credentials, known[c] == nil, let key = identityKey(c), let v = try? cache?.value(key) else { continue }
      known[c] = v.value
    }
    for (c, payer) in unknownIdentities(entries, cache: cache) {
      let call = context.pricing.call("youtube", "channels.list", rateLimit: payer.rateLimit, channel: payer.name)
      do {
        let json = try await send(
          "channels.list", method: "GET", url: config.endpoint + "/channels?part=id&mine=true", body: nil,
          call: call, credentials: c, channel: payer.name, context: context)
        guard let id = json?["items"]?.array?.first?["id"]?.string else { continue }
        known[c] = id
        if let key = identityKey(c) { try? cache?.setValue(key, id, expires: nil) }
      } catch is CancellationError {
        throw CancellationError()
      } catch {
        context.log("youtube: could not learn which channel the credentials \(c) act for: \(error)")
      }
    }
    return known
  }

  /// Pure: a desired Channel whose credentials act for another channel.
  static func credentialFindings(_ input: DiffInput) -> [Finding] {
    guard let other = input.observed[actsForField]?.string, let desired = input.desired, !desired.isNull else { return [] }
    let channelId = desired["channelId"]?.string ?? "?"
    let credentials = desired["credentials"]?.string ?? "?"
    return [
      Finding(
        condition: .stalled, reason: .credentialMismatch,
        message: "the credentials \(credentials) act for channel \(other), not for \(channelId); nothing is written for it until they do")
    ]
  }
}

extension ConditionReason {
  /// Stalled: a Channel's credentials act for another channel.
  public static let credentialMismatch = ConditionReason("CredentialMismatch")
}
