// The YouTube driver (DESIGN A4): channels.update branding, playlists CRUD.
// docs/drivers/youtube.md describes what it observes, its canonical forms, ownership and costs.
import Basics
import CurlHTTP
import DriverKit
import EmpireModel
import Foundation

public struct YouTubeDriverConfig: Sendable {
  /// Base URL of the Data API (`https://www.googleapis.com/youtube/v3`, or the sandbox's).
  public var endpoint: String
  /// Google's OAuth token endpoint (`https://oauth2.googleapis.com/token`).
  public var tokenEndpoint: String
  public var clientId: LazySecret
  public var clientSecret: LazySecret
  /// The refresh token for a Channel's `spec.youtube.credentials` name; nil = not configured.
  public var credentials: @Sendable (String) -> LazySecret?
  /// An access token is refreshed this many seconds before it expires.
  public var tokenMargin: TimeInterval
  /// Where the channel each credential acts for is remembered (the state store), so the
  /// observation's price includes asking only for what is not known yet. nil: not checked.
  public var cache: (any DriverCache)?

  public init(
    endpoint: String, tokenEndpoint: String, clientId: LazySecret, clientSecret: LazySecret,
    credentials: @escaping @Sendable (String) -> LazySecret?, tokenMargin: TimeInterval = 60, cache: (any DriverCache)? = nil
  ) {
    self.endpoint = endpoint
    self.tokenEndpoint = tokenEndpoint
    self.clientId = clientId
    self.clientSecret = clientSecret
    self.credentials = credentials
    self.tokenMargin = tokenMargin
    self.cache = cache
  }
}

/// Converges Channels with YouTube: `brandingSettings` through `channels.update`, and the
/// playlists the driver owns through `playlists.insert/update/delete`.
public final class YouTubeDriver: Driver {
  public let name = "youtube"
  public let kinds: Set<Kind> = [.channel]
  public let displayName = "YouTube"
  public let config: YouTubeDriverConfig
  /// YouTube answers at most 50 ids per `channels.list`.
  public static let batchSize = 50
  let tokens: TokenCache

  public init(config: YouTubeDriverConfig) {
    self.config = config
    tokens = TokenCache(config: config)
  }

  // MARK: external ids

  /// `external` keys: the channel id, the credentials name (so a Channel that left the
  /// repository can still be reached to delete its playlists), and `playlists/<name>` → PL id
  /// (status files show them as `playlists: {<name>: PL…}`, DESIGN A7).
  public enum ExternalKey {
    public static let channelId = "youtubeChannelId"
    public static let credentials = "youtubeCredentials"
    public static let playlistPrefix = "playlists/"
    public static func playlist(_ name: String) -> String { playlistPrefix + name }
  }

  // MARK: desired

  public func desired(_ resource: Resource, in index: DesiredIndex) -> JSONValue {
    guard let c = resource.channel else { return .null }
    return Canonical.desired(c)
  }

  // MARK: observation plan

  /// One channel to observe: where it is, who may read it, who pays.
  struct Entry: Sendable {
    var id: ResourceID
    var channelId: String
    var credentials: String?
    var rateLimit: String?
    var desired: JSONValue?
    var external: [String: String]
    var name: String { id.name }
  }

  struct ObservationPlan {
    var entries: [Entry] = []
    /// Targets with no channel id at all (never applied, and no longer desired): nothing exists.
    var unknown: [ResourceID] = []
    /// `channels.list` batches: per governing RateLimit, by name, at most 50 ids each.
    var batches: [[Entry]] = []
  }

  func plan(_ targets: [ObserveTarget], pricing: Pricing) -> ObservationPlan {
    var p = ObservationPlan()
    for t in targets.sorted(by: { $0.id < $1.id }) {
      let d = (t.desired?.isNull ?? true) ? nil : t.desired
      guard let cid = d?["channelId"]?.string ?? t.external[ExternalKey.channelId] else {
        p.unknown.append(t.id)
        continue
      }
      let rl = pricing.rateLimit(for: "youtube", named: d?["rateLimit"]?.string)
      p.entries.append(
        Entry(
          id: t.id, channelId: cid, credentials: d?["credentials"]?.string ?? t.external[ExternalKey.credentials],
          rateLimit: rl, desired: d, external: t.external))
    }
    let groups = Dictionary(grouping: p.entries, by: { $0.rateLimit ?? "" })
    for key in groups.keys.sorted() {
      // Desired channels first, so a batch is paid by a channel the quota still reserves for
      // (a Channel that left the repository has no reservation any more).
      let g = groups[key]!.sorted { a, b in (a.desired == nil) == (b.desired == nil) ? a.id < b.id : a.desired != nil }
      var i = 0
      while i < g.count {
        p.batches.append(Array(g[i..<min(g.count, i + Self.batchSize)]))
        i += Self.batchSize
      }
    }
    return p
  }

  public func observationCalls(_ targets: [ObserveTarget], pricing: Pricing) -> [PlannedCall] {
    let p = plan(targets, pricing: pricing)
    var calls = p.batches.map { b in pricing.call("youtube", "channels.list", rateLimit: b[0].rateLimit, channel: b[0].name) }
    // One page of playlists per channel (a channel with more than 50 playlists pays one unit per further page).
    calls += p.entries.map { e in pricing.call("youtube", "playlists.list", rateLimit: e.rateLimit, channel: e.name) }
    // Which channel a credential acts for, once per credential not known yet.
    calls += unknownIdentities(p.entries, cache: config.cache).map {
      pricing.call("youtube", "channels.list", rateLimit: $0.payer.rateLimit, channel: $0.payer.name)
    }
    return calls
  }

  // MARK: observe

  public func observe(_ targets: [ObserveTarget], context: DriverContext) async throws -> [ResourceID: ObservationOutcome] {
    let p = plan(targets, pricing: context.pricing)
    var out: [ResourceID: ObservationOutcome] = [:]
    for id in p.unknown { out[id] = .observed(state: .null, external: [:]) }

    // The channels.list batches at once (the resilient client applies the RateLimit's
    // concurrency and rate limits underneath).
    var channels: [String: JSONValue] = [:]
    try await withThrowingTaskGroup(of: (Int, Result<[JSONValue], any Error>).self) { group in
      var next = 0
      func start() {
        guard next < p.batches.count else { return }
        let i = next
        next += 1
        let batch = p.batches[i]
        group.addTask {
          let call = context.pricing.call("youtube", "channels.list", rateLimit: batch[0].rateLimit, channel: batch[0].name)
          var seen = Set<String>()
          let unique = batch.map(\.channelId).filter { seen.insert($0).inserted }
          let url = self.config.endpoint + "/channels?part=brandingSettings&id=" + unique.map(PercentEncoding.encode).joined(separator: ",")
          do {
            // Any channel's token may read the part; use the first of the batch whose credentials work.
            let credentials = try await self.firstWorkingCredentials(batch, context: context)
            let json = try await self.send(
              "channels.list", method: "GET", url: url, body: nil, call: call,
              credentials: credentials, channel: batch[0].name, context: context)
            return (i, .success(json?["items"]?.array ?? []))
          } catch is CancellationError {
            throw CancellationError()
          } catch {
            return (i, .failure(error))
          }
        }
      }
      for _ in 0..<min(Self.observeConcurrency, p.batches.count) { start() }
      while let (i, result) = try await group.next() {
        switch result {
        case .success(let items): for item in items { if let id = item["id"]?.string { channels[id] = item } }
        case .failure(let error):
          let names = p.batches[i].map(\.name)
          for e in p.batches[i] { out[e.id] = .failed(Self.batchFailure(error, channel: e.name, batch: names)) }
        }
        start()
      }
    }

    // Each channel's playlists, a few channels at a time (the resilient client still applies
    // the RateLimit's concurrency and rate limits underneath).
    let pending = p.entries.filter { out[$0.id] == nil }
    let actsFor = try await identities(pending, context: context)
    let found = channels
    try await withThrowingTaskGroup(of: (ResourceID, ObservationOutcome).self) { group in
      var next = 0
      func start() {
        guard next < pending.count else { return }
        let e = pending[next]
        next += 1
        group.addTask { (e.id, try await self.observeChannel(e, item: found[e.channelId], context: context)) }
      }
      for _ in 0..<min(Self.observeConcurrency, pending.count) { start() }
      while let (id, outcome) = try await group.next() {
        out[id] = outcome
        start()
      }
    }
    // A desired channel whose credentials act for another: the diff plans nothing for it.
    for e in pending where e.desired != nil {
      guard let c = e.credentials, let other = actsFor[c], other != e.channelId,
        case .observed(var state, let ext)? = out[e.id], var fields = state.object
      else { continue }
      fields[Self.actsForField] = .string(other)
      state = .object(fields)
      out[e.id] = .observed(state: state, external: ext)
    }
    return out
  }

  /// The failure of a batched channels.list as one channel of the batch sees it: its own name,
  /// and that the call was the batch's (sent for the first channel whose credentials work), so
  /// an error is not pinned on the channel that happened to pay for it.
  static func batchFailure(_ error: any Error, channel: String, batch: [String]) -> String {
    if let none = error as? NoWorkingCredentials {
      // Each channel's own credentials failed: its own reason, whatever the others'.
      let own = none.errors[channel] ?? "youtube channels.list for \(channel): no token"
      return batch.count > 1 ? own + " (no channel of its channels.list batch of \(batch.count) has working credentials)" : own
    }
    guard batch.count > 1 else { return "\(error)" }
    let note = "one batched channels.list for \(batch.count) channels (\(batch.joined(separator: ", ")))"
    if var y = error as? YouTubeError, y.operation == "channels.list" {
      let payer = y.channel
      y.channel = channel
      let via = payer.map { $0 == channel ? "" : ", sent with the credentials of \($0)" } ?? ""
      y.message += (y.message.isEmpty ? "" : " ") + "(\(note)\(via))"
      return "\(y)"
    }
    return "youtube channels.list for \(channel): \(note) failed: \(error)"
  }

  /// Calls in flight at once while observing; the RateLimit's `concurrency` (and the global
  /// limiter) bound what actually reaches YouTube.
  static let observeConcurrency = 32

  private func observeChannel(_ e: Entry, item: JSONValue?, context: DriverContext) async throws -> ObservationOutcome {
    guard let item else {
      // Gone together with everything in it, when no longer desired; an error otherwise.
      if e.desired == nil { return .observed(state: .null, external: [:]) }
      return .failed(
        "\(YouTubeError(operation: "channels.list", channel: e.name, status: nil, reason: "channelNotFound", message: "channel \(e.channelId) does not exist or is not visible to the credentials \(e.credentials ?? "?")"))"
      )
    }
    do {
      guard let credentials = e.credentials else {
        throw YouTubeError(
          operation: "playlists.list", channel: e.name, status: nil, reason: "credentialsNotConfigured",
          message: "no credentials are known for channel \(e.channelId)")
      }
      let listed = try await listPlaylists(e, credentials: credentials, context: context)
      let (state, adopted) = Self.observedState(channel: item, playlists: listed, desired: e.desired, external: e.external)
      var ext = adopted
      ext[ExternalKey.channelId] = e.channelId
      ext[ExternalKey.credentials] = credentials
      return .observed(state: state, external: ext)
    } catch is CancellationError {
      throw CancellationError()
    } catch {
      return .failed("\(error)")
    }
  }

  private func firstWorkingCredentials(_ batch: [Entry], context: DriverContext) async throws -> String {
    var errors: [String: String] = [:]
    for e in batch {
      guard let c = e.credentials else {
        errors[e.name] =
          "\(YouTubeError(operation: "channels.list", channel: e.name, status: nil, reason: "credentialsNotConfigured", message: "no credentials are known for channel \(e.channelId)"))"
        continue
      }
      do {
        _ = try await tokens.token(c, channel: e.name, context: context)
        return c
      } catch is CancellationError {
        throw CancellationError()
      } catch {
        errors[e.name] = "\(error)"
      }
    }
    throw NoWorkingCredentials(errors: errors)
  }

  /// No channel of a channels.list batch could get a token: each channel's own reason.
  struct NoWorkingCredentials: Error {
    var errors: [String: String]
  }

  /// Every playlist of the channel, `maxResults=50` per page, following `nextPageToken`.
  /// `charge` is asked before each page is requested (an import's `--max-units`).
  func listPlaylists(
    _ e: Entry, credentials: String, context: DriverContext, charge: ((PlannedCall) throws -> PlannedCall)? = nil
  ) async throws -> [JSONValue] {
    var items: [JSONValue] = []
    var pageToken: String?
    var seenTokens = Set<String>()
    repeat {
      // contentDetails: itemCount, so a delete knows whether videos would leave with the playlist (same call, same unit).
      var url =
        config.endpoint + "/playlists?part=snippet,status,contentDetails&channelId=" + PercentEncoding.encode(e.channelId)
        + "&maxResults=50"
      if let pageToken { url += "&pageToken=" + PercentEncoding.encode(pageToken) }
      var call = context.pricing.call("youtube", "playlists.list", rateLimit: e.rateLimit, channel: e.name)
      if let charge { call = try charge(call) }
      let json = try await send(
        "playlists.list", method: "GET", url: url, body: nil, call: call,
        credentials: credentials, channel: e.name, context: context)
      items += json?["items"]?.array ?? []
      pageToken = json?["nextPageToken"]?.string
      if let t = pageToken, !seenTokens.insert(t).inserted || t.isEmpty { pageToken = nil }
    } while pageToken != nil && seenTokens.count < 1000
    return items
  }

  /// The canonical observed state, and the playlists adopted by title (`playlists/<name>` → id).
  static func observedState(
    channel: JSONValue, playlists listed: [JSONValue], desired: JSONValue?,
    external: [String: String]
  ) -> (JSONValue, [String: String]) {
    let brandingSettings = channel["brandingSettings"] ?? .object([:])
    let all = listed.compactMap(Canonical.playlist)
    let byId = Dictionary(all.map { ($0["id"]!.string!, $0) }, uniquingKeysWith: { a, _ in a })

    var owned: [String: JSONValue] = [:]
    var claimed = Set<String>()
    for (key, pid) in external where key.hasPrefix(ExternalKey.playlistPrefix) {
      let name = String(key.dropFirst(ExternalKey.playlistPrefix.count))
      if let p = byId[pid] {
        owned[name] = p
        claimed.insert(pid)
      }
    }
    // Adoption: a desired playlist with no (live) recorded id takes the first unclaimed
    // playlist of the channel with exactly its title, in the order YouTube lists them.
    var adopted: [String: String] = [:]
    if let want = desired?["playlists"]?.object {
      // A renamed key takes its old key's playlist (in the diff), not another with its title.
      let renamed = PlaylistRenames.pairs(want: want, have: owned)
      for name in want.keys.sorted() where owned[name] == nil && renamed[name] == nil {
        guard let title = want[name]?["title"]?.string else { continue }
        if let p = all.first(where: { $0["title"]?.string == title && !claimed.contains($0["id"]!.string!) }) {
          let pid = p["id"]!.string!
          owned[name] = p
          claimed.insert(pid)
          adopted[ExternalKey.playlist(name)] = pid
        }
      }
    }
    let state: JSONValue = [
      "channelId": channel["id"] ?? .null,
      "branding": Canonical.branding(brandingSettings),
      "brandingSettings": brandingSettings,
      "playlists": .object(owned),
    ]
    return (state, adopted)
  }

  // MARK: diff

  public func diff(_ input: DiffInput) -> [Action] {
    // Credentials that act for another channel: no write is attempted (see `findings`).
    if !Self.credentialFindings(input).isEmpty { return [] }
    return YouTubeDiff.actions(input, driver: name)
  }

  public var findingTypes: [ConditionType] { [.stalled] }

  public func findings(_ input: DiffInput, now: Date) -> [Finding] { Self.credentialFindings(input) }

  // MARK: apply

  public func apply(_ action: Action, observed: JSONValue, external: [String: String], context: DriverContext) async throws -> ApplyOutcome
  {
    let p = action.payload
    let channelName = action.resource.name
    guard let channelId = p["channelId"]?.string ?? external[ExternalKey.channelId] ?? observed["channelId"]?.string else {
      throw YouTubeError(
        operation: action.calls.first?.operation ?? action.key, channel: channelName, status: nil,
        reason: "channelNotFound", message: "the action names no channel id")
    }
    guard
      let credentials = p["credentials"]?.string ?? external[ExternalKey.credentials]
        ?? context.desired.resource(.channel, channelName)?.channel?.youtube.credentials
    else {
      throw YouTubeError(
        operation: action.calls.first?.operation ?? action.key, channel: channelName, status: nil,
        reason: "credentialsNotConfigured", message: "no credentials are known for channel \(channelId)")
    }
    let call = action.calls.first ?? context.pricing.call("youtube", "channels.update", channel: channelName)
    var state = observed.object
    var ext: [String: String?] = [ExternalKey.channelId: channelId, ExternalKey.credentials: credentials]
    let playlistName = p["name"]?.string

    switch (action.operation, action.key) {
    case (.update, YouTubeDiff.brandingKey):
      let body: JSONValue = ["id": .string(channelId), "brandingSettings": p["brandingSettings"] ?? .object([:])]
      let json = try await send(
        "channels.update", method: "PUT", url: config.endpoint + "/channels?part=brandingSettings",
        body: body, call: call, credentials: credentials, channel: channelName, context: context)
      let bs = json?["brandingSettings"] ?? body["brandingSettings"]!
      state?["brandingSettings"] = bs
      state?["branding"] = Canonical.branding(bs)

    case (.create, _):
      guard let playlistName, let body = p["body"] else { throw malformed(action) }
      let json = try await send(
        "playlists.insert", method: "POST", url: config.endpoint + "/playlists?part=snippet,status",
        body: body, call: call, credentials: credentials, channel: channelName, context: context)
      guard let json, let pid = json["id"]?.string else {
        throw YouTubeError(
          operation: "playlists.insert", channel: channelName, status: nil, reason: "malformedResponse",
          message: "the inserted playlist came back without an id")
      }
      ext[ExternalKey.playlist(playlistName)] = pid
      // A new playlist holds no video (what observing it would say).
      let canonical = Canonical.playlist(json.object?["snippet"] != nil ? json : Self.merge(body, id: pid)).map {
        Self.with($0, itemCount: 0)
      }
      Self.setPlaylist(&state, playlistName, canonical)

    case (.update, _):
      // A rename (payload `renamedFrom`) without a changed field calls nothing: only the key moves.
      let from = p["renamedFrom"]?.string
      guard let playlistName, let pid = p["body"]?["id"]?.string ?? p["id"]?.string, p["body"] != nil || from != nil else {
        throw malformed(action)
      }
      let before = observed["playlists"]?[from ?? playlistName]
      var canonical = before
      if let body = p["body"] {
        let json = try await send(
          "playlists.update", method: "PUT", url: config.endpoint + "/playlists?part=snippet,status",
          body: body, call: call, credentials: credentials, channel: channelName, context: context)
        // The videos stay: the count observed before is still the count.
        canonical = Canonical.playlist(json?["snippet"] != nil ? json! : body).map { Self.with($0, itemCount: before?["itemCount"]?.int) }
      }
      ext[ExternalKey.playlist(playlistName)] = pid
      if let from, from != playlistName {
        ext[ExternalKey.playlist(from)] = .some(nil)
        Self.setPlaylist(&state, from, nil)
      }
      Self.setPlaylist(&state, playlistName, canonical)

    case (.delete, _):
      guard let playlistName, let pid = p["id"]?.string else { throw malformed(action) }
      _ = try await send(
        "playlists.delete", method: "DELETE", url: config.endpoint + "/playlists?id=" + PercentEncoding.encode(pid),
        body: nil, call: call, credentials: credentials, channel: channelName, context: context, goneIsSuccess: true)
      ext[ExternalKey.playlist(playlistName)] = .some(nil)
      Self.setPlaylist(&state, playlistName, nil)
    }
    return ApplyOutcome(external: ext, observed: state.map(JSONValue.object))
  }

  private func malformed(_ a: Action) -> YouTubeError {
    YouTubeError(
      operation: a.calls.first?.operation ?? a.key, channel: a.resource.name, status: nil, reason: "malformedAction",
      message: "action \(a.id) lacks what apply needs in its payload")
  }

  private static func merge(_ body: JSONValue, id: String) -> JSONValue {
    var b = body.object ?? [:]
    b["id"] = .string(id)
    return .object(b)
  }

  private static func with(_ playlist: JSONValue, itemCount: Int64?) -> JSONValue {
    guard let itemCount, var o = playlist.object else { return playlist }
    o["itemCount"] = .int(itemCount)
    return .object(o)
  }

  private static func setPlaylist(_ state: inout [String: JSONValue]?, _ name: String, _ value: JSONValue?) {
    guard state != nil else { return }
    var pl = state?["playlists"]?.object ?? [:]
    pl[name] = value
    state?["playlists"] = .object(pl)
  }

  // MARK: calls

  /// One authenticated YouTube call: a 401 drops the token, refreshes it once and retries once.
  /// Returns the parsed body (nil when empty, or when `goneIsSuccess` and the answer was 404).
  func send(
    _ operation: String, method: String, url: String, body: JSONValue?, call: PlannedCall,
    credentials: String, channel: String, context: DriverContext, goneIsSuccess: Bool = false
  ) async throws -> JSONValue? {
    let client = context.client("youtube")
    var refreshed = false
    while true {
      let token = try await tokens.token(credentials, channel: channel, context: context)
      var headers: HTTPHeaders = ["Authorization": "Bearer \(token)", "Accept": "application/json"]
      var bytes: [UInt8]?
      if let body {
        headers.add("Content-Type", "application/json")
        bytes = body.canonicalBytes
      }
      let request = HTTPRequest(method: method, url: url, headers: headers, body: bytes)
      var failure: (status: Int?, reason: String, message: String)
      do {
        let r = try await client.send(request, call: call)
        if (200..<300).contains(r.status) {
          if r.body.isEmpty { return nil }
          do { return try JSONValue.parse(r.body) } catch {
            throw YouTubeError(
              operation: operation, channel: channel, status: r.status, reason: "malformedResponse",
              message: "the answer is not JSON")
          }
        }
        let (reason, message) = ErrorText.parse(r.body, status: r.status)
        failure = (r.status, reason, message)
      } catch let e where CallFailure(e) != nil {
        let f = CallFailure(e)!
        failure = (f.status, f.reason ?? f.status.map { "HTTP \($0)" } ?? "transportError", ErrorText.stripHTML(f.message))
      }
      if failure.status == 401 && !refreshed {
        refreshed = true
        await tokens.drop(credentials, context: context)
        continue
      }
      if failure.status == 404 && goneIsSuccess { return nil }
      throw YouTubeError(
        operation: operation, channel: channel, status: failure.status, reason: failure.reason,
        message: ErrorText.scrub(failure.message, [token]))
    }
  }
}
