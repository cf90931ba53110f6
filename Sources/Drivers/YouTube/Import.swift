import DriverKit
import EmpireModel
import Foundation

/// `ytempire import` of Channels (DESIGN A10 "Import"): for each credential, the channel it
/// acts for (`channels.list?mine=true`, 1 unit) and every playlist of that channel
/// (`playlists.list`, 1 unit per page of 50), read with the same calls and canonical forms as
/// the observation, so `--adopt` records exactly what the next plan compares against.
extension YouTubeDriver: Importer {
  public var importKinds: Set<Kind> { [.channel] }

  /// The credentials an import uses: the ones asked for, else every configured secret whose
  /// value has the form of a Google OAuth refresh token (`1//…`). The form is checked here,
  /// before anything is sent: a secret meant for another host (an OpenAI key) never goes to
  /// Google's token endpoint.
  public func importCredentials(_ request: ImportRequest, configured: [String]) -> [String] {
    if !request.youtubeCredentials.isEmpty { return request.youtubeCredentials }
    return configured.sorted().filter { name in
      guard let value = try? config.credentials(name)?.resolve() else { return false }
      return value.hasPrefix("1//")
    }
  }

  public func importCalls(_ request: ImportRequest, pricing: Pricing) -> [PlannedCall] {
    guard request.wants(.channel) else { return [] }
    return request.youtubeCredentials.flatMap { _ in
      [pricing.call("youtube", "channels.list"), pricing.call("youtube", "playlists.list")]
    }
  }

  /// `request.youtubeCredentials` must already be the resolved list (`importCredentials`).
  public func discover(_ request: ImportRequest, budget: ImportBudget, context: DriverContext) async throws -> ImportResult {
    guard request.wants(.channel) else { return ImportResult() }
    var result = ImportResult()
    for credentials in request.youtubeCredentials {
      do {
        if let r = try await importChannel(credentials: credentials, budget: budget, context: context) {
          result.resources.append(r)
        } else {
          result.errors.append("youtube: the credentials \(credentials) act for no channel (channels.list?mine=true is empty)")
        }
      } catch is CancellationError {
        throw CancellationError()
      } catch {
        result.errors.append("youtube: \(credentials): \(error)")
      }
    }
    return result
  }

  /// The call charged to the import's budget; paid from the quota's shared pool (the channel
  /// is not in the repository yet, so no channel's reservation pays for it).
  private func charged(_ call: PlannedCall, _ budget: ImportBudget) throws -> PlannedCall {
    var c = call
    c.channel = nil
    guard budget.charge(c) else { throw ImportBudgetExceeded(call: c, limit: budget.limit ?? 0) }
    return c
  }

  private func importChannel(credentials: String, budget: ImportBudget, context: DriverContext) async throws -> ImportedResource? {
    let rateLimit = context.pricing.rateLimit(for: "youtube")
    let call = try charged(context.pricing.call("youtube", "channels.list", rateLimit: rateLimit), budget)
    let json = try await send(
      "channels.list", method: "GET", url: config.endpoint + "/channels?part=id,brandingSettings&mine=true", body: nil,
      call: call, credentials: credentials, channel: credentials, context: context)
    guard let item = json?["items"]?.array?.first, let channelId = item["id"]?.string else { return nil }
    let entry = Entry(
      id: ResourceID(.channel, credentials), channelId: channelId, credentials: credentials, rateLimit: rateLimit,
      desired: nil, external: [:])
    let listed = try await listPlaylists(entry, credentials: credentials, context: context) { try self.charged($0, budget) }

    // The manifest: branding as YouTube holds it, every playlist under a key made from its title.
    let branding = Canonical.branding(item["brandingSettings"])
    var b: [String: JSONValue] = ["title": branding["title"] ?? ""]
    if let d = branding["description"]?.string, !d.isEmpty { b["description"] = .string(d) }
    if let k = branding["keywords"]?.array, !k.isEmpty { b["keywords"] = .array(k) }
    for f in ["defaultLanguage", "country", "unsubscribedTrailer"] { if let v = branding[f] { b[f] = v } }
    var keys = Set<String>()
    var playlists: [JSONValue] = []
    var external: [String: String] = [ExternalKey.channelId: channelId, ExternalKey.credentials: credentials]
    for p in listed.compactMap(Canonical.playlist) {
      guard let pid = p["id"]?.string else { continue }
      let key = ImportNames.unique(ImportNames.slug(p["title"]?.string ?? "", fallback: "playlist"), in: &keys)
      var o: [String: JSONValue] = ["name": .string(key), "title": p["title"] ?? "", "privacy": p["privacy"] ?? "public"]
      if let d = p["description"]?.string, !d.isEmpty { o["description"] = .string(d) }
      if let t = p["tags"]?.array, !t.isEmpty { o["tags"] = .array(t) }
      playlists.append(.object(o))
      external[ExternalKey.playlist(key)] = pid
    }
    let spec: JSONValue = [
      "active": true,
      "youtube": ["channelId": .string(channelId), "credentials": .string(credentials)],
      "branding": .object(b),
      "playlists": .array(playlists),
    ]
    let (observed, _) = Self.observedState(channel: item, playlists: listed, desired: nil, external: external)
    var cache: [String: String] = [:]
    if let key = identityKey(credentials) { cache[key] = channelId }
    let title = branding["title"]?.string ?? ""
    return ImportedResource(
      kind: .channel, name: ImportNames.slug(title, fallback: "channel-" + channelId.lowercased()), spec: spec,
      notes: [
        "Imported from YouTube channel \(channelId) with the credentials \(credentials).",
        "YouTube does not hold content, limits or rateLimit: they are left out (no content settings, no",
        "limits, the quota of the service's first RateLimit). Add them here; see docs/resource-model.md.",
      ],
      external: external, observed: observed, cache: cache)
  }
}
