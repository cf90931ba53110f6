import YAMLKit

public enum Voice: String, Sendable, CaseIterable, Codable {
  case professionalMale = "professional_male"
  case professionalFemale = "professional_female"
  case casualMale = "casual_male"
  case casualFemale = "casual_female"
}

public enum Privacy: String, Sendable, CaseIterable, Codable {
  case `public`, unlisted, `private`
}

public enum Capability: String, Sendable, CaseIterable, Codable {
  case llm, tts, image
}

public struct ChannelSpec: Sendable {
  public struct YouTube: Sendable {
    public var channelId: String
    public var credentials: String
  }
  public struct Branding: Sendable, Equatable {
    public var title: String
    public var description: String?
    public var keywords: [String]?
    public var defaultLanguage: String?
    public var country: String?
    public var unsubscribedTrailer: String?
  }
  public struct Playlist: Sendable {
    public var name: String
    public var title: String
    public var description: String?
    public var privacy: Privacy
    public var tags: [String]?
    public var mark: SourceMark
    /// The key this playlist had before (`renamedFrom`): its playlist is re-keyed, never deleted and made again.
    public var renamedFrom: String? = nil
  }
  public struct Content: Sendable {
    public var style: String?
    public var duration: ModelDuration?
    public var voice: Voice?
    public var visualStyle: String?
    /// Chain references by capability.
    public var providers: [Capability: Reference]
  }
  public struct Limits: Sendable {
    public var videosPerDay: Int?
    public var uploadsPerHour: Int?
    public var quotaShare: Double?
    public var quotaShareMark: SourceMark?
  }

  public var active: Bool
  public var youtube: YouTube
  public var branding: Branding
  public var playlists: [Playlist]
  public var content: Content?
  public var limits: Limits?
  public var rateLimit: Reference?
}

extension NodeDecoder {
  func channelSpec(_ node: YAMLNode, _ path: String) -> ChannelSpec? {
    guard let f = mapping(node, path, known: ["active", "youtube", "branding", "playlists", "content", "limits", "rateLimit"]) else {
      return nil
    }
    requireFields(f, ["youtube", "branding"])
    let active = bool(f, "active") ?? true

    var youtube: ChannelSpec.YouTube?
    if let n = f.value("youtube"), let y = mapping(n, f.sub("youtube"), known: ["channelId", "credentials"]) {
      requireFields(y, ["channelId", "credentials"])
      let id = pattern(y, "channelId", what: "a YouTube channel id (UC followed by 22 letters, digits, '-' or '_')") { s in
        let u = Array(s.utf8)
        return u.count == 24 && s.hasPrefix("UC")
          && u[2...].allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) || $0 == 0x2d || $0 == 0x5f
          }
      }
      let cred = secretRef(y, "credentials")
      if let id, let cred { youtube = .init(channelId: id, credentials: cred) }
    }

    var branding: ChannelSpec.Branding?
    if let n = f.value("branding"),
      let b = mapping(
        n, f.sub("branding"), known: ["title", "description", "keywords", "defaultLanguage", "country", "unsubscribedTrailer"])
    {
      requireFields(b, ["title"])
      let title = string(b, "title", maxLength: 100, minLength: 1)
      let description = string(b, "description", maxLength: 1000)
      let keywords = stringList(b, "keywords", maxLength: 100) { $0.utf8.contains(0x22) ? "must not contain '\"'" : nil }
      if let kw = keywords {
        let joined = YouTubeKeywords.join(kw)
        if joined.utf8.count > 500, let n = b.value("keywords") {
          diags.error(
            .outOfRange, "\(b.sub("keywords")) add up to \(joined.utf8.count) characters as YouTube sends them; at most 500 are allowed",
            at: n.mark)
        }
      }
      let lang = pattern(b, "defaultLanguage", what: "a BCP-47 language tag such as en or pt-BR", Names.isLanguageTag)
      let country = pattern(b, "country", what: "an ISO 3166 two-letter country code in capitals such as US or NO") { s in
        s.utf8.count == 2 && s.utf8.allSatisfy { $0 >= 0x41 && $0 <= 0x5a }
      }
      let trailer = pattern(b, "unsubscribedTrailer", what: "a YouTube video id (11 letters, digits, '-' or '_')") { s in
        s.utf8.count == 11
          && s.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) || $0 == 0x2d || $0 == 0x5f
          }
      }
      if let title {
        branding = .init(
          title: title, description: description, keywords: keywords, defaultLanguage: lang, country: country, unsubscribedTrailer: trailer)
      }
    }

    var playlists: [ChannelSpec.Playlist] = []
    var renamedFrom: [(Reference, String)] = []
    if let items = list(f, "playlists") {
      for (p, n) in items {
        guard let m = mapping(n, p, known: ["name", "title", "description", "privacy", "tags", "renamedFrom"]) else { continue }
        requireFields(m, ["name", "title"])
        let name = self.name(m, "name")
        let title = string(m, "title", maxLength: 150, minLength: 1)
        let desc = string(m, "description", maxLength: 5000)
        let privacy = enumeration(m, "privacy", Privacy.self) ?? .public
        let tags = stringList(m, "tags", maxLength: 100)
        let from = self.name(m, "renamedFrom")
        if let from { renamedFrom.append((from, m.sub("renamedFrom"))) }
        if let name, let title {
          playlists.append(
            .init(
              name: name.name, title: title, description: desc, privacy: privacy, tags: tags, mark: name.mark,
              renamedFrom: from?.name))
        }
      }
      checkUnique(playlists.map { Reference(name: $0.name, mark: $0.mark) }, in: f.sub("playlists"))
      // The old key of a rename is gone from the channel: naming a playlist it still declares would hand one playlist to two keys.
      let declared = Dictionary(playlists.map { ($0.name, $0.mark) }, uniquingKeysWith: { a, _ in a })
      for (from, path) in renamedFrom {
        if let still = declared[from.name] {
          diags.error(
            .invalidValue,
            "\(path) '\(from.name)' names a playlist this channel still declares; renamedFrom is the key the playlist had before, which must be gone",
            at: from.mark, notes: [.init("'\(from.name)' is declared here", at: still)])
        }
      }
      checkUnique(renamedFrom.map { $0.0 }, in: f.sub("playlists"), what: "renamedFrom")
    }

    var content: ChannelSpec.Content?
    if let n = f.value("content"), let c = mapping(n, f.sub("content"), known: ["style", "duration", "voice", "visualStyle", "providers"]) {
      let style = pattern(c, "style", what: "an identifier such as educational (lowercase letters, digits, '_')", Names.isIdentifier)
      let dur = duration(c, "duration")
      let voice = enumeration(c, "voice", Voice.self)
      let visual = pattern(
        c, "visualStyle", what: "an identifier such as modern_dynamic (lowercase letters, digits, '_')", Names.isIdentifier)
      var providers: [Capability: Reference] = [:]
      if let pn = c.value("providers"), let pf = mapping(pn, c.sub("providers"), known: Capability.allCases.map(\.rawValue)) {
        for cap in Capability.allCases {
          if let r = name(pf, cap.rawValue) { providers[cap] = r }
        }
      }
      content = .init(style: style, duration: dur, voice: voice, visualStyle: visual, providers: providers)
    }

    var limits: ChannelSpec.Limits?
    if let n = f.value("limits"), let l = mapping(n, f.sub("limits"), known: ["videosPerDay", "uploadsPerHour", "quotaShare"]) {
      limits = .init(
        videosPerDay: int(l, "videosPerDay", min: 0),
        uploadsPerHour: int(l, "uploadsPerHour", min: 0),
        quotaShare: number(l, "quotaShare", min: 0, max: 1),
        quotaShareMark: l.value("quotaShare")?.mark)
    }
    let rateLimit = name(f, "rateLimit")

    guard let youtube, let branding else { return nil }
    return ChannelSpec(
      active: active, youtube: youtube, branding: branding, playlists: playlists, content: content, limits: limits, rateLimit: rateLimit)
  }
}

/// YouTube keeps channel keywords as ONE space-separated string; multi-word keywords are quoted.
public enum YouTubeKeywords {
  public static func join(_ keywords: [String]) -> String {
    keywords.map { $0.utf8.contains(0x20) ? "\"\($0)\"" : $0 }.joined(separator: " ")
  }

  public static func split(_ s: String) -> [String] {
    var out: [String] = []
    var cur = ""
    var quoted = false
    for ch in s {
      if ch == "\"" {
        quoted.toggle()
        continue
      }
      if ch == " " && !quoted {
        if !cur.isEmpty {
          out.append(cur)
          cur = ""
        }
        continue
      }
      cur.append(ch)
    }
    if !cur.isEmpty { out.append(cur) }
    return out
  }
}
