import Foundation

/// Credentials the sandbox accepts. Deterministic by default so configs and tests can name them.
public struct SandboxCredentials: Sendable, Codable, Equatable {
  public var youtubeClientId = "sandbox-client.apps.googleusercontent.com"
  public var youtubeClientSecret = "sandbox-client-secret"
  public var n8nAPIKey = "sandbox-n8n-api-key"
  public var cloudflareToken = "sandbox-cloudflare-token"
  public var vaultToken = "hvs.sandbox-root-token"
  public init() {}
}

/// YouTube quota accounting: a per-day unit budget with per-method costs (configurable).
public struct QuotaConfig: Sendable, Codable, Equatable {
  public var dailyUnits: Int = 10_000
  /// Cost per method, e.g. `channels.list`. Methods not listed fall back to the verb default
  /// (list 1, insert/update/delete 50); every request costs at least 1.
  public var costs: [String: Int] = QuotaConfig.defaultCosts
  public static let defaultCosts: [String: Int] = [
    "channels.list": 1, "channels.update": 50,
    "playlists.list": 1, "playlists.insert": 50, "playlists.update": 50, "playlists.delete": 50,
    "videos.list": 1, "videos.insert": 1600, "videos.update": 50, "videos.delete": 50,
    "search.list": 100,
  ]
  public init() {}

  func cost(of method: String) -> Int {
    if let c = costs[method] { return max(1, c) }
    if method.hasSuffix(".list") { return 1 }
    return 50
  }
}

/// Cloudflare's per-token request limit and block.
public struct CloudflareLimits: Sendable, Codable, Equatable {
  public var requests = 1200
  public var window: TimeInterval = 300
  public var block: TimeInterval = 300
  public init() {}
}

struct AccessToken: Codable, Sendable, Equatable {
  var channelId: String
  var expires: Double
}

struct YouTubeState: Codable, Sendable, Equatable {
  /// Channel resources by id (snippet, brandingSettings, statistics, …) as the API returns them.
  var channels: [String: JSON] = [:]
  /// Playlist resources by id; `playlistOrder` keeps creation order (newest first on list).
  var playlists: [String: JSON] = [:]
  var playlistOrder: [String] = []
  /// Refresh token → channel id.
  var refreshTokens: [String: String] = [:]
  var accessTokens: [String: AccessToken] = [:]
  var quota = QuotaConfig()
  var quotaUsed = 0
  var quotaDay = ""
}

struct N8nState: Codable, Sendable, Equatable {
  var workflows: [String: JSON] = [:]
  var order: [String] = []
  /// Tag id → tag object.
  var tags: [String: JSON] = [:]
  var tagOrder: [String] = []
}

struct CloudflareState: Codable, Sendable, Equatable {
  var zones: [String: JSON] = [:]
  var zoneOrder: [String] = []
  /// zone id → phase → ruleset.
  var rulesets: [String: [String: JSON]] = [:]
  var limits = CloudflareLimits()
  var recent: [Double] = []
  var blockedUntil: Double = 0
  /// The one account (every seeded zone's `account.id`): Workers scripts and R2 buckets live in it.
  var accountId = SandboxCloudflare.accountId
  /// Workers scripts by name, as `GET …/workers/scripts` lists them; `scriptContent` holds their source.
  var scripts: [String: JSON] = [:]
  var scriptContent: [String: String] = [:]
  /// zone id → Workers routes (`{id, pattern, script}`) in creation order.
  var routes: [String: [JSON]] = [:]
  /// zone id → setting id → the setting's object; unset settings answer their default.
  var settings: [String: [String: JSON]] = [:]
  /// R2 buckets by name (`{name, creation_date, location, storage_class}`).
  var buckets: [String: JSON] = [:]

  init() {}

  enum CodingKeys: String, CodingKey {
    case zones, zoneOrder, rulesets, limits, recent, blockedUntil, accountId, scripts, scriptContent, routes, settings, buckets
  }

  /// Fields added later default when a state file from before them is loaded.
  init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    zones = try c.decodeIfPresent([String: JSON].self, forKey: .zones) ?? [:]
    zoneOrder = try c.decodeIfPresent([String].self, forKey: .zoneOrder) ?? []
    rulesets = try c.decodeIfPresent([String: [String: JSON]].self, forKey: .rulesets) ?? [:]
    limits = try c.decodeIfPresent(CloudflareLimits.self, forKey: .limits) ?? CloudflareLimits()
    recent = try c.decodeIfPresent([Double].self, forKey: .recent) ?? []
    blockedUntil = try c.decodeIfPresent(Double.self, forKey: .blockedUntil) ?? 0
    accountId = try c.decodeIfPresent(String.self, forKey: .accountId) ?? SandboxCloudflare.accountId
    scripts = try c.decodeIfPresent([String: JSON].self, forKey: .scripts) ?? [:]
    scriptContent = try c.decodeIfPresent([String: String].self, forKey: .scriptContent) ?? [:]
    routes = try c.decodeIfPresent([String: [JSON]].self, forKey: .routes) ?? [:]
    settings = try c.decodeIfPresent([String: [String: JSON]].self, forKey: .settings) ?? [:]
    buckets = try c.decodeIfPresent([String: JSON].self, forKey: .buckets) ?? [:]
  }
}

struct KVVersion: Codable, Sendable, Equatable {
  var data: JSON
  var created: Double
  var deleted: Double?
  var destroyed = false
}

struct KVEntry: Codable, Sendable, Equatable {
  var versions: [KVVersion] = []
  var created: Double
  var updated: Double
  var maxVersions = 0
  var customMetadata: JSON = .null
}

struct VaultState: Codable, Sendable, Equatable {
  var policies: [String: String] = ["default": VaultState.defaultPolicy]
  /// KV v2 entries of mount `secret` by path.
  var kv: [String: KVEntry] = [:]
  var sealed = false
  /// Audit devices by path with its trailing slash (`ytempire/`), as `GET sys/audit` shows them
  /// (optional so that sandbox files written before audit devices existed still load).
  var auditDevices: [String: JSON]?
  static let defaultPolicy =
    "# Allow tokens to look up their own properties\npath \"auth/token/lookup-self\" {\n    capabilities = [\"read\"]\n}\n"
}

/// Everything the sandbox emulates: what the admin API shows and the SQLite file keeps.
struct World: Codable, Sendable, Equatable {
  var credentials = SandboxCredentials()
  var youtube = YouTubeState()
  var n8n = N8nState()
  var cloudflare = CloudflareState()
  var vault = VaultState()
  /// Counter for deterministic identifiers.
  var serial = 0

  mutating func nextSerial() -> Int {
    serial += 1
    return serial
  }
}
