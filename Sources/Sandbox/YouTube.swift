import Foundation

/// YouTube Data API v3 (channels, playlists) and its OAuth token endpoint.
enum YouTubeEmulator {
  static let scope = "https://www.googleapis.com/auth/youtube"

  // MARK: errors

  static func error(
    _ code: Int, _ reason: String, _ message: String, domain: String = "global",
    location: String? = nil, locationType: String? = nil, status: String? = nil,
    headers: [(String, String)] = []
  ) -> SandboxResponse {
    var e: [String: JSON] = ["message": .string(message), "domain": .string(domain), "reason": .string(reason)]
    if let location { e["location"] = .string(location) }
    if let locationType { e["locationType"] = .string(locationType) }
    var body: [String: JSON] = ["code": .int(code), "message": .string(message), "errors": [.object(e)]]
    if let status { body["status"] = .string(status) }
    return .json(code, ["error": .object(body)], headers: headers)
  }

  static func quotaExceeded() -> SandboxResponse {
    error(
      403, "quotaExceeded",
      "The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.",
      domain: "youtube.quota")
  }

  static func required(_ name: String) -> SandboxResponse {
    error(400, "required", "Required parameter: \(name)", location: name, locationType: "parameter")
  }

  static func parseError() -> SandboxResponse {
    error(400, "parseError", "Parse Error")
  }

  static func invalidValue(_ field: String, _ detail: String) -> SandboxResponse {
    error(400, "invalid", "Invalid value at '\(field)', \(detail)", status: "INVALID_ARGUMENT")
  }

  static func unknownField(_ name: String, at path: String) -> SandboxResponse {
    error(
      400, "invalid", "Invalid JSON payload received. Unknown name \"\(name)\" at '\(path)': Cannot find field.",
      status: "INVALID_ARGUMENT")
  }

  static let authMessage =
    "Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."

  // MARK: dispatch

  /// The API method a request calls (the key of the cost table), or nil for an unknown route.
  static func method(_ r: SandboxRequest) -> String? {
    let resource = String(r.path.dropFirst("/youtube/v3/".count))
    let known = ["channels", "playlists", "videos", "search", "playlistItems", "thumbnails", "comments"]
    guard known.contains(resource) else { return nil }
    if resource == "thumbnails" { return r.method == "POST" ? "thumbnails.set" : nil }
    switch r.method {
    case "GET": return "\(resource).list"
    case "POST": return "\(resource).insert"
    case "PUT": return "\(resource).update"
    case "DELETE": return "\(resource).delete"
    default: return nil
    }
  }

  static func rollQuotaDay(_ w: inout YouTubeState, now: Date) {
    let day = Timestamp.pacificDay(now)
    if w.quotaDay != day {
      w.quotaDay = day
      w.quotaUsed = 0
    }
  }

  /// Charges `units` against today's quota.
  static func charge(_ w: inout YouTubeState, _ units: Int) {
    w.quotaUsed += max(1, units)
  }

  static func handle(_ r: SandboxRequest, _ w: inout YouTubeState, _ env: EmulatorEnv, now: Date) -> SandboxResponse {
    rollQuotaDay(&w, now: now)
    let method = method(r)
    let cost = method.map { w.quota.cost(of: $0) } ?? 1
    if w.quotaUsed + cost > w.quota.dailyUnits { return quotaExceeded() }

    // Authentication: every request needs a live access token from /token.
    guard let auth = r.headers["authorization"], !auth.isEmpty else {
      charge(&w, 1)
      return error(
        401, "required", "Request is missing required authentication credential. " + authMessage,
        location: "Authorization", locationType: "header", status: "UNAUTHENTICATED",
        headers: [("WWW-Authenticate", "Bearer realm=\"https://accounts.google.com/\"")])
    }
    let parts = auth.split(separator: " ", maxSplits: 1)
    guard parts.count == 2, parts[0].lowercased() == "bearer",
      let tok = w.accessTokens[String(parts[1])], tok.expires > now.timeIntervalSince1970
    else {
      charge(&w, 1)
      return error(
        401, "authError", "Request had invalid authentication credentials. " + authMessage,
        location: "Authorization", locationType: "header", status: "UNAUTHENTICATED",
        headers: [("WWW-Authenticate", "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"")])
    }
    let caller = tok.channelId

    guard let method else {
      charge(&w, 1)
      return error(404, "notFound", "Not Found", domain: "global")
    }
    let (response, executed) = route(method, r, &w, env, caller: caller, now: now)
    charge(&w, executed ? cost : 1)
    return response
  }

  static func route(_ method: String, _ r: SandboxRequest, _ w: inout YouTubeState, _ env: EmulatorEnv, caller: String, now: Date) -> (
    SandboxResponse, Bool
  ) {
    switch method {
    case "channels.list": return channelsList(r, w, caller: caller)
    case "channels.update": return channelsUpdate(r, &w, caller: caller)
    case "playlists.list": return playlistsList(r, w, caller: caller)
    case "playlists.insert": return playlistsInsert(r, &w, env, caller: caller, now: now)
    case "playlists.update": return playlistsUpdate(r, &w, caller: caller)
    case "playlists.delete": return playlistsDelete(r, &w, caller: caller)
    default:
      return (error(501, "notImplemented", "The sandbox does not emulate \(method).", domain: "global"), false)
    }
  }

  // MARK: parts

  /// Parses `part`; returns the parts or an error response.
  static func parts(_ r: SandboxRequest, allowed: Set<String>) -> Result<[String], ResponseError> {
    guard let raw = r.q("part"), !raw.trimmingCharacters(in: .whitespaces).isEmpty else {
      return .failure(.init(required("part")))
    }
    let ps = raw.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    for p in ps where !allowed.contains(p) {
      return .failure(.init(error(400, "unknownPart", "'\(p)'", domain: "youtube.part", location: "part", locationType: "parameter")))
    }
    return .success(ps)
  }

  static func project(_ resource: JSON, parts: [String]) -> JSON {
    var out: [String: JSON] = ["kind": resource["kind"] ?? .null, "id": resource["id"] ?? .null]
    for p in parts where p != "id" {
      if let v = resource[p] { out[p] = v }
    }
    out["etag"] = .string(Ident.etag(.object(out)))
    return .object(out)
  }

  static func listResponse(kind: String, items: [JSON], total: Int, perPage: Int, next: String?, prev: String?) -> JSON {
    var o: [String: JSON] = [
      "kind": .string(kind),
      "pageInfo": ["totalResults": .int(total), "resultsPerPage": .int(perPage)],
      "items": .array(items),
    ]
    if let next { o["nextPageToken"] = .string(next) }
    if let prev { o["prevPageToken"] = .string(prev) }
    o["etag"] = .string(Ident.etag(.object(o)))
    return .object(o)
  }

  // MARK: channels

  static let channelParts: Set<String> = [
    "id", "snippet", "brandingSettings", "statistics", "contentDetails", "status",
    "topicDetails", "localizations", "auditDetails", "contentOwnerDetails",
  ]

  static func channelsList(_ r: SandboxRequest, _ w: YouTubeState, caller: String) -> (SandboxResponse, Bool) {
    let ps: [String]
    switch parts(r, allowed: channelParts) {
    case .failure(let e): return (e.response, false)
    case .success(let p): ps = p
    }
    var ids: [String]
    let filters = ["id", "mine", "forHandle", "forUsername", "managedByMe"].filter { r.q($0) != nil }
    if filters.count > 1 {
      return (
        error(
          400, "incompatibleParameters", "Incompatible parameters specified in the request: \(filters.joined(separator: ", "))",
          domain: "youtube.parameter", location: "parameters.", locationType: "other"), false
      )
    }
    if let idParam = r.q("id") {
      ids = idParam.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
      if ids.count > 50 {
        return (
          error(
            400, "invalidValue", "Invalid value for parameter id: at most 50 ids may be given.",
            domain: "youtube.parameter", location: "id", locationType: "parameter"), false
        )
      }
    } else if r.q("mine") == "true" {
      ids = [caller]
    } else {
      return (
        error(
          400, "missingRequiredParameter",
          "No filter selected. Expected one of: forUsername, managedByMe, categoryId, mine, mySubscribers, id, idParam, forHandle",
          domain: "youtube.parameter", location: "parameters.", locationType: "other"), false
      )
    }
    var seen = Set<String>()
    ids = ids.filter { seen.insert($0).inserted }
    let items = ids.compactMap { w.channels[$0] }.map { project($0, parts: ps) }
    return (
      .json(
        200,
        listResponse(
          kind: "youtube#channelListResponse", items: items, total: items.count,
          perPage: items.count, next: nil, prev: nil)), true
    )
  }

  static let brandingChannelFields: Set<String> = [
    "title", "description", "keywords", "defaultLanguage", "country",
    "unsubscribedTrailer", "trackingAnalyticsAccountId", "moderateComments",
    "showRelatedChannels", "showBrowseView", "featuredChannelsTitle",
    "featuredChannelsUrls", "profileColor", "defaultTab",
  ]

  static func channelsUpdate(_ r: SandboxRequest, _ w: inout YouTubeState, caller: String) -> (SandboxResponse, Bool) {
    let ps: [String]
    switch parts(r, allowed: channelParts) {
    case .failure(let e): return (e.response, false)
    case .success(let p): ps = p
    }
    if ps.count != 1 || ps[0] != "brandingSettings" {
      let bad = ps.first { $0 != "brandingSettings" } ?? ps.joined(separator: ",")
      return (
        error(
          400, "unexpectedPart",
          "The request specifies an unexpected value for the <code>part</code> parameter: '\(bad)'. Only one part may be updated per request, and the sandbox supports brandingSettings.",
          domain: "youtube.part", location: "part", locationType: "parameter"), false
      )
    }
    guard let body = r.json, case .object(let resource) = body else { return (parseError(), false) }
    for k in resource.keys
    where !["id", "kind", "etag", "brandingSettings", "snippet", "statistics", "status", "contentDetails", "localizations"].contains(k) {
      return (unknownField(k, at: "resource"), false)
    }
    guard let id = resource["id"]?.string, !id.isEmpty else {
      return (error(400, "required", "Required parameter: resource.id", location: "resource.id", locationType: "other"), false)
    }
    // Whole-part overwrite: what is not sent is gone.
    var branding: [String: JSON] = [:]
    if let b = resource["brandingSettings"] {
      guard case .object(let bo) = b else { return (invalidValue("resource.branding_settings", "expected an object"), false) }
      for (section, value) in bo {
        guard ["channel", "watch", "image", "hints"].contains(section) else {
          return (unknownField(section, at: "resource.branding_settings"), false)
        }
        guard case .object(let so) = value else {
          return (invalidValue("resource.branding_settings.\(section)", "expected an object"), false)
        }
        if section == "channel" {
          var clean: [String: JSON] = [:]
          for (k, v) in so {
            guard brandingChannelFields.contains(k) else { return (unknownField(k, at: "resource.branding_settings.channel"), false) }
            if ["title", "description", "keywords", "defaultLanguage", "country", "unsubscribedTrailer", "trackingAnalyticsAccountId"]
              .contains(k)
            {
              guard v.string != nil || v.isNull else {
                return (invalidValue("resource.branding_settings.channel.\(k)", "(TYPE_STRING), \(v.serialized)"), false)
              }
            }
            if !v.isNull { clean[k] = v }
          }
          if let kw = clean["keywords"]?.string, kw.utf8.count > 500 {
            return (
              error(
                400, "invalidChannelKeywords", "The request specifies invalid channel keywords (more than 500 characters).",
                domain: "youtube.channel"), false
            )
          }
          branding["channel"] = .object(clean)
        } else {
          branding[section] = .object(so)
        }
      }
    }
    guard var channel = w.channels[id] else {
      return (
        error(
          404, "channelNotFound", "The channel identified with the <code>id</code> parameter could not be found.",
          domain: "youtube.channel", location: "id", locationType: "parameter"), true
      )
    }
    guard id == caller else {
      return (error(403, "forbidden", "The request might not be properly authorized.", domain: "youtube.common"), true)
    }
    channel["brandingSettings"] = .object(branding)
    // The channel's own title and description follow the branding, as in YouTube Studio.
    if var snippet = channel["snippet"] {
      let c = branding["channel"]
      if let t = c?["title"]?.string { snippet["title"] = .string(t) }
      snippet["description"] = .string(c?["description"]?.string ?? "")
      channel["snippet"] = snippet
    }
    w.channels[id] = channel
    return (.json(200, project(channel, parts: ["brandingSettings"])), true)
  }

  // MARK: playlists

  static let playlistParts: Set<String> = ["id", "snippet", "status", "contentDetails", "player", "localizations"]

  static func pageToken(_ offset: Int) -> String { "SBP" + String(offset, radix: 36) + "Q" }

  static func parsePageToken(_ s: String) -> Int? {
    guard s.hasPrefix("SBP"), s.hasSuffix("Q"), s.count > 4 else { return nil }
    return Int(s.dropFirst(3).dropLast(), radix: 36)
  }

  static func playlistsList(_ r: SandboxRequest, _ w: YouTubeState, caller: String) -> (SandboxResponse, Bool) {
    let ps: [String]
    switch parts(r, allowed: playlistParts) {
    case .failure(let e): return (e.response, false)
    case .success(let p): ps = p
    }
    var maxResults = 5
    if let m = r.q("maxResults") {
      guard let n = Int(m), (0...50).contains(n) else {
        return (
          error(
            400, "invalidParameter", "Invalid value '\(m)'. Values must be within the range: [0, 50]",
            location: "maxResults", locationType: "parameter"), false
        )
      }
      maxResults = n
    }
    var all: [JSON]
    if let idParam = r.q("id") {
      let ids = idParam.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
      all = ids.compactMap { w.playlists[$0] }
    } else if let channelId = r.q("channelId") ?? (r.q("mine") == "true" ? caller : nil) {
      guard w.channels[channelId] != nil else {
        return (
          error(
            404, "channelNotFound", "The channel identified with the request's <code>channelId</code> parameter cannot be found.",
            domain: "youtube.playlist", location: "channelId", locationType: "parameter"), true
        )
      }
      // Creation order, newest first; playlists added through the admin API come last.
      let ordered = Set(w.playlistOrder)
      let ids = w.playlistOrder.reversed() + w.playlists.keys.filter { !ordered.contains($0) }.sorted()
      all = ids.compactMap { w.playlists[$0] }
        .filter { $0["snippet"]?["channelId"]?.string == channelId }
      // Another channel's private playlists are not listed.
      if channelId != caller {
        all = all.filter { $0["status"]?["privacyStatus"]?.string != "private" }
      }
    } else {
      return (
        error(
          400, "missingRequiredParameter", "No filter selected. Expected one of: channelId, id, mine",
          domain: "youtube.parameter", location: "parameters.", locationType: "other"), false
      )
    }
    var offset = 0
    if let t = r.q("pageToken"), !t.isEmpty {
      guard let o = parsePageToken(t), o >= 0, o <= all.count else {
        return (
          error(
            400, "invalidPageToken", "The request specifies an invalid page token.",
            domain: "youtube.parameter", location: "pageToken", locationType: "parameter"), false
        )
      }
      offset = o
    }
    let end = min(all.count, offset + maxResults)
    let page = Array(all[offset..<end]).map { project($0, parts: ps) }
    let next = end < all.count && maxResults > 0 ? pageToken(end) : nil
    let prev = offset > 0 ? pageToken(max(0, offset - maxResults)) : nil
    return (
      .json(
        200,
        listResponse(
          kind: "youtube#playlistListResponse", items: page, total: all.count,
          perPage: maxResults, next: next, prev: prev)), true
    )
  }

  enum SnippetCheck {
    case ok([String: JSON])
    case bad(SandboxResponse)
  }

  /// Validates the writable snippet fields of a playlist body.
  static func playlistSnippet(_ body: JSON) -> SnippetCheck {
    guard let s = body["snippet"], case .object(let so) = s else {
      return .bad(error(400, "playlistTitleRequired", "The request must specify a playlist title.", domain: "youtube.playlist"))
    }
    for k in so.keys
    where !["title", "description", "tags", "defaultLanguage", "channelId", "publishedAt", "thumbnails", "channelTitle", "localized"]
      .contains(k)
    {
      return .bad(unknownField(k, at: "resource.snippet"))
    }
    guard let title = so["title"]?.string, !title.trimmingCharacters(in: .whitespaces).isEmpty else {
      return .bad(error(400, "playlistTitleRequired", "The request must specify a playlist title.", domain: "youtube.playlist"))
    }
    if title.count > 150 {
      return .bad(error(400, "invalidPlaylistSnippet", "The request provided an invalid playlist snippet.", domain: "youtube.playlist"))
    }
    var out: [String: JSON] = ["title": .string(title)]
    if let d = so["description"], !d.isNull {
      guard let ds = d.string else { return .bad(invalidValue("resource.snippet.description", "(TYPE_STRING), \(d.serialized)")) }
      if ds.count > 5000 {
        return .bad(error(400, "invalidPlaylistSnippet", "The request provided an invalid playlist snippet.", domain: "youtube.playlist"))
      }
      out["description"] = .string(ds)
    }
    if let t = so["tags"], !t.isNull {
      guard let ta = t.array, ta.allSatisfy({ $0.string != nil }) else {
        return .bad(invalidValue("resource.snippet.tags", "(TYPE_STRING), \(t.serialized)"))
      }
      out["tags"] = t
    }
    if let l = so["defaultLanguage"], !l.isNull {
      guard l.string != nil else { return .bad(invalidValue("resource.snippet.default_language", "(TYPE_STRING), \(l.serialized)")) }
      out["defaultLanguage"] = l
    }
    return .ok(out)
  }

  static func privacy(_ body: JSON) -> Result<String?, ResponseError> {
    guard let st = body["status"] else { return .success(nil) }
    guard case .object(let so) = st else { return .failure(.init(invalidValue("resource.status", "expected an object"))) }
    for k in so.keys where k != "privacyStatus" && k != "podcastStatus" {
      return .failure(.init(unknownField(k, at: "resource.status")))
    }
    guard let p = so["privacyStatus"] else { return .success(nil) }
    guard let ps = p.string, ["public", "unlisted", "private"].contains(ps) else {
      return .failure(
        .init(
          invalidValue(
            "resource.status.privacy_status", "(type.googleapis.com/youtube.api.v3.PlaylistStatus.PrivacyStatus), \(p.serialized)")))
    }
    return .success(ps)
  }

  static func fillSnippet(_ snippet: [String: JSON], channel: JSON?, channelId: String, publishedAt: String) -> JSON {
    var s = snippet
    s["description"] = s["description"] ?? ""
    s["channelId"] = .string(channelId)
    s["publishedAt"] = .string(publishedAt)
    s["channelTitle"] = channel?["snippet"]?["title"] ?? ""
    s["thumbnails"] = ["default": ["url": "https://i.ytimg.com/img/no_thumbnail.jpg", "width": 120, "height": 90]]
    s["localized"] = ["title": s["title"] ?? "", "description": s["description"] ?? ""]
    return .object(s)
  }

  static func playlistsInsert(_ r: SandboxRequest, _ w: inout YouTubeState, _ env: EmulatorEnv, caller: String, now: Date) -> (
    SandboxResponse, Bool
  ) {
    let ps: [String]
    switch parts(r, allowed: playlistParts) {
    case .failure(let e): return (e.response, false)
    case .success(let p): ps = p
    }
    guard let body = r.json, body.object != nil else { return (parseError(), false) }
    guard ps.contains("snippet") else {
      return (error(400, "playlistTitleRequired", "The request must specify a playlist title.", domain: "youtube.playlist"), false)
    }
    let snippet: [String: JSON]
    switch playlistSnippet(body) {
    case .bad(let e): return (e, false)
    case .ok(let s): snippet = s
    }
    var privacyStatus = "public"
    if ps.contains("status") {
      switch privacy(body) {
      case .failure(let e): return (e.response, false)
      case .success(let p): if let p { privacyStatus = p }
      }
    }
    let serial = env.nextSerial()
    let id = "PL" + Ident.make("playlist-\(serial)-\(caller)", length: 32, alphabet: Ident.urlsafe)
    let playlist: JSON = [
      "kind": "youtube#playlist",
      "id": .string(id),
      "snippet": fillSnippet(
        snippet, channel: w.channels[caller], channelId: caller,
        publishedAt: Timestamp.rfc3339(now, digits: 0)),
      "status": ["privacyStatus": .string(privacyStatus)],
      "contentDetails": ["itemCount": 0],
    ]
    w.playlists[id] = playlist
    w.playlistOrder.append(id)
    return (.json(200, project(playlist, parts: ps)), true)
  }

  static func playlistsUpdate(_ r: SandboxRequest, _ w: inout YouTubeState, caller: String) -> (SandboxResponse, Bool) {
    let ps: [String]
    switch parts(r, allowed: playlistParts) {
    case .failure(let e): return (e.response, false)
    case .success(let p): ps = p
    }
    guard let body = r.json, body.object != nil else { return (parseError(), false) }
    guard let id = body["id"]?.string, !id.isEmpty else {
      return (error(400, "required", "Required parameter: resource.id", location: "resource.id", locationType: "other"), false)
    }
    var snippet: [String: JSON]?
    if ps.contains("snippet") {
      switch playlistSnippet(body) {
      case .bad(let e): return (e, false)
      case .ok(let s): snippet = s
      }
    }
    var privacyStatus: String?
    if ps.contains("status") {
      switch privacy(body) {
      case .failure(let e): return (e.response, false)
      case .success(let p): privacyStatus = p
      }
    }
    guard var playlist = w.playlists[id] else {
      return (
        error(
          404, "playlistNotFound", "The playlist identified with the request's <code>id</code> parameter cannot be found.",
          domain: "youtube.playlist", location: "id", locationType: "parameter"), true
      )
    }
    guard playlist["snippet"]?["channelId"]?.string == caller else {
      return (
        error(
          403, "playlistForbidden", "This operation is forbidden or the request is not properly authorized.",
          domain: "youtube.playlist"), true
      )
    }
    if let snippet {
      // Whole-part overwrite: an omitted description, tag list or language is deleted.
      let old = playlist["snippet"]
      playlist["snippet"] = fillSnippet(
        snippet, channel: w.channels[caller], channelId: caller,
        publishedAt: old?["publishedAt"]?.string ?? "")
    }
    if let privacyStatus { playlist["status"] = ["privacyStatus": .string(privacyStatus)] }
    w.playlists[id] = playlist
    return (.json(200, project(playlist, parts: ps)), true)
  }

  static func playlistsDelete(_ r: SandboxRequest, _ w: inout YouTubeState, caller: String) -> (SandboxResponse, Bool) {
    guard let id = r.q("id"), !id.isEmpty else { return (required("id"), false) }
    guard let playlist = w.playlists[id] else {
      return (
        error(
          404, "playlistNotFound", "The playlist identified with the request's <code>id</code> parameter cannot be found.",
          domain: "youtube.playlist", location: "id", locationType: "parameter"), true
      )
    }
    guard playlist["snippet"]?["channelId"]?.string == caller else {
      return (
        error(
          403, "playlistForbidden", "This operation is forbidden or the request is not properly authorized.",
          domain: "youtube.playlist"), true
      )
    }
    w.playlists[id] = nil
    w.playlistOrder.removeAll { $0 == id }
    return (.empty(204), true)
  }

  // MARK: OAuth

  static func token(_ r: SandboxRequest, _ w: inout YouTubeState, _ env: EmulatorEnv, now: Date) -> SandboxResponse {
    func oauthError(_ status: Int, _ e: String, _ d: String) -> SandboxResponse {
      .json(status, ["error": .string(e), "error_description": .string(d)])
    }
    guard r.method == "POST" else { return oauthError(405, "invalid_request", "Method \(r.method) is not allowed; use POST.") }
    var form: [String: String] = [:]
    if (r.headers["content-type"] ?? "").contains("application/json") {
      guard let o = r.json?.object else { return oauthError(400, "invalid_request", "Invalid JSON payload received.") }
      for (k, v) in o { if let s = v.string { form[k] = s } }
    } else {
      for (k, v) in SandboxRequest.parseForm(String(decoding: r.body, as: UTF8.self)) where form[k] == nil { form[k] = v }
    }
    guard let grant = form["grant_type"], !grant.isEmpty else {
      return oauthError(400, "invalid_request", "Required parameter is missing: grant_type")
    }
    guard grant == "refresh_token" else { return oauthError(400, "unsupported_grant_type", "Invalid grant_type: \(grant)") }
    guard form["client_id"] == env.credentials.youtubeClientId else {
      return oauthError(401, "invalid_client", "The OAuth client was not found.")
    }
    guard form["client_secret"] == env.credentials.youtubeClientSecret else {
      return oauthError(401, "invalid_client", "Unauthorized")
    }
    guard let refresh = form["refresh_token"], !refresh.isEmpty else {
      return oauthError(400, "invalid_request", "Missing required parameter: refresh_token")
    }
    guard let channelId = w.refreshTokens[refresh] else {
      return oauthError(400, "invalid_grant", "Token has been expired or revoked.")
    }
    let serial = env.nextSerial()
    let access = "ya29.sandbox-" + Ident.make("access-\(serial)-\(refresh)", length: 48, alphabet: Ident.urlsafe)
    w.accessTokens[access] = AccessToken(channelId: channelId, expires: now.timeIntervalSince1970 + 3599)
    // Forget expired tokens so the state does not grow without bound.
    let t = now.timeIntervalSince1970
    w.accessTokens = w.accessTokens.filter { $0.value.expires > t }
    return .json(200, ["access_token": .string(access), "expires_in": 3599, "scope": .string(scope), "token_type": "Bearer"])
  }
}

struct ResponseError: Error {
  var response: SandboxResponse
  init(_ r: SandboxResponse) { response = r }
}
