import DriverKit
import EmpireModel

/// Desired vs observed → actions. Pure: no I/O, no clock.
enum YouTubeDiff {
  static let brandingKey = "branding"
  /// The action key of a playlist (its external id is under `ExternalKey.playlist(name)`).
  static func playlistKey(_ name: String) -> String { "playlist/\(name)" }

  static func actions(_ input: DiffInput, driver: String) -> [Action] {
    guard case .object(let observed) = input.observed else { return [] }
    let desired: JSONValue? = (input.desired?.isNull ?? true) ? nil : input.desired
    let channel = input.id.name
    let rateLimit = desired?["rateLimit"]?.string
    func price(_ operation: String) -> PlannedCall {
      input.pricing.call("youtube", operation, rateLimit: rateLimit, channel: channel)
    }
    let channelId = observed["channelId"]?.string ?? desired?["channelId"]?.string ?? input.external[YouTubeDriver.ExternalKey.channelId]
    let credentials = desired?["credentials"]?.string ?? input.external[YouTubeDriver.ExternalKey.credentials]
    func payload(_ extra: [String: JSONValue]) -> JSONValue {
      var o = extra
      o["channelId"] = JSONValue(channelId)
      o["credentials"] = JSONValue(credentials)
      return .object(o)
    }
    var actions: [Action] = []

    // Branding: only the fields the manifest sets are compared; the whole part is sent back.
    if let want = desired?["branding"], let wantFields = want.object, !wantFields.isEmpty {
      let changes = JSONDiff.changes(Canonical.managed(observed["branding"], by: want), want, prefix: "branding")
      if !changes.isEmpty {
        var settings = observed["brandingSettings"]?.object ?? [:]
        var ch = settings["channel"]?.object ?? [:]
        for (k, v) in wantFields {
          ch[k] = k == "keywords" ? .string(YouTubeKeywords.join(Canonical.strings(v))) : v
        }
        settings["channel"] = .object(ch)
        let title = want["title"]?.string ?? channel
        actions.append(
          Action(
            driver: driver, resource: input.id, operation: .update, key: brandingKey,
            summary: "branding of \"\(title)\"", changes: changes, calls: [price("channels.update")],
            payload: payload(["brandingSettings": .object(settings)])))
      }
    }

    // Playlists, by their name in the manifest.
    let want = desired?["playlists"]?.object ?? [:]
    let have = observed["playlists"]?.object ?? [:]
    // A key that changed keeps its playlist: re-keyed, and updated in place where fields differ.
    let renames = PlaylistRenames.pairs(want: want, have: have)
    for name in want.keys.sorted() {
      let w = PlaylistRenames.fields(want[name]!)
      let key = playlistKey(name)
      let recorded = input.external[YouTubeDriver.ExternalKey.playlist(name)]
      let title = w["title"]?.string ?? name
      if let old = renames[name], let h = have[old], let pid = h["id"]?.string {
        let changes = JSONDiff.changes(Canonical.managed(h, by: w), w, prefix: "playlists.\(name)")
        // Only the state store learns the new key; YouTube is called when a field differs.
        var extra: [String: JSONValue] = ["name": .string(name), "renamedFrom": .string(old), "id": .string(pid)]
        if !changes.isEmpty { extra["body"] = updateBody(w, observed: h, id: pid) }
        actions.append(
          Action(
            driver: driver, resource: input.id, operation: .update, key: key,
            summary: "playlist \"\(title)\" (\(pid)), renamed from \(old)",
            changes: [FieldChange(path: "playlists.\(name).key", old: .string(old), new: .string(name))] + changes,
            calls: changes.isEmpty ? [] : [price("playlists.update")], payload: payload(extra)))
      } else if let h = have[name], let pid = h["id"]?.string {
        let changes = JSONDiff.changes(Canonical.managed(h, by: w), w, prefix: "playlists.\(name)")
        guard !changes.isEmpty else { continue }
        // The engine passes ids adopted by the observation in `external`; when it does not, say so.
        let adopted = recorded != pid
        actions.append(
          Action(
            driver: driver, resource: input.id, operation: .update, key: key,
            summary: adopted ? "playlist \"\(title)\" (adopting \(pid) by its title)" : "playlist \"\(title)\"",
            changes: changes, calls: [price("playlists.update")],
            payload: payload(["name": .string(name), "id": .string(pid), "body": updateBody(w, observed: h, id: pid)])))
      } else {
        let changes = (w.object ?? [:]).keys.sorted().map { k in
          FieldChange(path: "playlists.\(name).\(k)", old: nil, new: w[k])
        }
        actions.append(
          Action(
            driver: driver, resource: input.id, operation: .create, key: key,
            summary: "playlist \"\(title)\"", changes: changes, calls: [price("playlists.insert")],
            payload: payload(["name": .string(name), "body": insertBody(w)])))
      }
    }
    // Deletes: only playlists whose id is recorded (adoption never happens for an undesired name),
    // and never one a new key took over.
    let renamed = Set(renames.values)
    for name in have.keys.sorted() where want[name] == nil && !renamed.contains(name) {
      let h = have[name]!
      guard let pid = h["id"]?.string, input.external[YouTubeDriver.ExternalKey.playlist(name)] == pid else { continue }
      let fields = (h.object ?? [:]).filter { $0.key != "id" && $0.key != "defaultLanguage" && $0.key != "itemCount" }
      let changes = fields.keys.sorted().map { k in FieldChange(path: "playlists.\(name).\(k)", old: fields[k], new: nil) }
      var delete = Action(
        driver: driver, resource: input.id, operation: .delete, key: playlistKey(name),
        summary: "playlist \"\(h["title"]?.string ?? name)\" (\(pid))", changes: changes,
        calls: [price("playlists.delete")],
        payload: payload(["name": .string(name), "id": .string(pid)]))
      // Its videos would leave with it: the engine blocks the delete unless forced or allowed.
      if let n = h["itemCount"]?.int, n > 0 { delete.holds = "\(n) video\(n == 1 ? "" : "s")" }
      actions.append(delete)
    }
    return actions
  }

  /// `playlists.insert` body: what the manifest sets.
  static func insertBody(_ w: JSONValue) -> JSONValue {
    var snippet: [String: JSONValue] = ["title": w["title"] ?? ""]
    if let d = w["description"] { snippet["description"] = d }
    if let t = w["tags"], !(t.array?.isEmpty ?? true) { snippet["tags"] = t }
    return ["snippet": .object(snippet), "status": ["privacyStatus": w["privacy"] ?? "public"]]
  }

  /// `playlists.update` body: the part is overwritten, so every writable field is sent, the
  /// unmanaged ones (description, tags, language when the manifest omits them) as observed.
  static func updateBody(_ w: JSONValue, observed h: JSONValue, id: String) -> JSONValue {
    var snippet: [String: JSONValue] = [
      "title": w["title"] ?? h["title"] ?? "",
      "description": w["description"] ?? h["description"] ?? "",
    ]
    if let t = w["tags"] ?? h["tags"], !(t.array?.isEmpty ?? true) { snippet["tags"] = t }
    if let l = h["defaultLanguage"] { snippet["defaultLanguage"] = l }
    return [
      "id": .string(id), "snippet": .object(snippet),
      "status": ["privacyStatus": w["privacy"] ?? h["privacy"] ?? "public"],
    ]
  }
}
