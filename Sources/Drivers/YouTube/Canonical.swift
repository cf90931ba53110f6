import DriverKit
import EmpireModel
import Foundation

/// The canonical forms the driver diffs (docs/drivers/youtube.md).
///
/// Desired (no secrets, no marks; a field the manifest omits is absent = not managed):
/// ```json
/// {"channelId": "UC…", "credentials": "youtube-tech-daily", "rateLimit": "youtube-api",
///  "branding": {"title", "description"?, "keywords"?: [sorted, unique], "defaultLanguage"?, "country"?, "unsubscribedTrailer"?},
///  "playlists": {"<name>": {"title", "description"?, "privacy", "tags"?: [sorted, unique], "renamedFrom"?}}}
/// ```
/// Observed (the same shape, every field present, plus what apply needs):
/// ```json
/// {"channelId": "UC…",
///  "branding": {"title", "description", "keywords": [sorted, unique], "defaultLanguage"?, "country"?, "unsubscribedTrailer"?},
///  "brandingSettings": {…the whole part as YouTube returned it…},
///  "playlists": {"<name>": {"id": "PL…", "title", "description", "privacy", "tags": [sorted, unique], "defaultLanguage"?, "itemCount"?}}}
/// ```
/// Only owned playlists (recorded in `external`, or adopted by title) appear under `playlists`.
enum Canonical {
  /// The branding fields the driver manages, in `brandingSettings.channel`.
  static let brandingFields = ["title", "description", "keywords", "defaultLanguage", "country", "unsubscribedTrailer"]

  /// Text as YouTube keeps it: CRLF and CR become LF.
  static func text(_ s: String) -> String {
    guard s.utf8.contains(0x0D) else { return s }
    return s.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
  }

  /// A keyword or tag list, order- and duplicate-insensitive: trimmed, empty ones dropped, unique, sorted.
  static func set(_ list: [String]) -> JSONValue {
    var seen = Set<String>()
    var out: [String] = []
    for k in list {
      let t = k.trimmingCharacters(in: .whitespaces)
      if !t.isEmpty, seen.insert(t).inserted { out.append(t) }
    }
    return .array(out.sorted().map(JSONValue.string))
  }

  static func strings(_ v: JSONValue?) -> [String] { v?.array?.compactMap(\.string) ?? [] }

  // MARK: desired

  static func desired(_ c: ChannelSpec) -> JSONValue {
    let b = c.branding
    var branding: [String: JSONValue] = ["title": .string(b.title)]
    if let d = b.description { branding["description"] = .string(text(d)) }
    if let k = b.keywords { branding["keywords"] = set(k) }
    if let l = b.defaultLanguage { branding["defaultLanguage"] = .string(l) }
    if let country = b.country { branding["country"] = .string(country) }
    if let t = b.unsubscribedTrailer { branding["unsubscribedTrailer"] = .string(t) }
    var playlists: [String: JSONValue] = [:]
    for p in c.playlists {
      var o: [String: JSONValue] = ["title": .string(p.title), "privacy": .string(p.privacy.rawValue)]
      if let d = p.description { o["description"] = .string(text(d)) }
      if let t = p.tags { o["tags"] = set(t) }
      if let from = p.renamedFrom { o["renamedFrom"] = .string(from) }
      playlists[p.name] = .object(o)
    }
    var out: [String: JSONValue] = [
      "channelId": .string(c.youtube.channelId),
      "credentials": .string(c.youtube.credentials),
      "branding": .object(branding),
      "playlists": .object(playlists),
    ]
    if let rl = c.rateLimit?.name { out["rateLimit"] = .string(rl) }
    return .object(out)
  }

  // MARK: observed

  /// The managed branding fields of an observed `brandingSettings` part.
  static func branding(_ brandingSettings: JSONValue?) -> JSONValue {
    let ch = brandingSettings?["channel"]
    var o: [String: JSONValue] = [
      "title": .string(ch?["title"]?.string ?? ""),
      "description": .string(text(ch?["description"]?.string ?? "")),
      "keywords": set(YouTubeKeywords.split(ch?["keywords"]?.string ?? "")),
    ]
    for k in ["defaultLanguage", "country", "unsubscribedTrailer"] {
      if let s = ch?[k]?.string, !s.isEmpty { o[k] = .string(s) }
    }
    return .object(o)
  }

  /// A playlist resource (`part=snippet,status,contentDetails`) in the canonical observed form;
  /// `itemCount` (the videos it holds) only when the answer has `contentDetails`.
  static func playlist(_ item: JSONValue) -> JSONValue? {
    guard let id = item["id"]?.string else { return nil }
    let s = item["snippet"]
    var o: [String: JSONValue] = [
      "id": .string(id),
      "title": .string(s?["title"]?.string ?? ""),
      "description": .string(text(s?["description"]?.string ?? "")),
      "privacy": .string(item["status"]?["privacyStatus"]?.string ?? "public"),
      "tags": set(strings(s?["tags"])),
    ]
    if let l = s?["defaultLanguage"]?.string, !l.isEmpty { o["defaultLanguage"] = .string(l) }
    if let n = item["contentDetails"]?["itemCount"]?.int { o["itemCount"] = .int(n) }
    return .object(o)
  }

  /// The fields of `observed` that `desired` manages, for a like-with-like diff.
  static func managed(_ observed: JSONValue?, by desired: JSONValue) -> JSONValue {
    guard let d = desired.object else { return observed ?? .null }
    var o: [String: JSONValue] = [:]
    for k in d.keys { if let v = observed?[k] { o[k] = v } }
    return .object(o)
  }
}
