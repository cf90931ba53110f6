import EmpireModel
import Foundation

/// A channel the sandbox created from the desired-state repository, with the refresh token
/// that the reconciler config must carry under the channel's `credentials` secret name.
public struct SeededChannel: Sendable, Codable, Equatable {
  public var name: String
  public var channelId: String
  public var credentials: String
  public var refreshToken: String
}

public struct SeedReport: Sendable, Codable, Equatable {
  public var channels: [SeededChannel] = []
  public var zones: [String] = []
  public var secrets: [String] = []
}

public struct SeedError: Error, CustomStringConvertible {
  public var description: String
}

/// Creates, from a desired-state directory, what would already exist in the real systems:
/// the YouTube channels (with branding that differs from the repository, so `plan` has work),
/// their OAuth refresh tokens, the Cloudflare zones and the Vault keys.
enum Seeder {
  /// Deterministic per channel name, so tests and configs can name it.
  static func refreshToken(for channel: String) -> String { "1//sandbox-refresh-\(channel)" }

  static func zoneId(_ zone: String) -> String { Ident.make("zone-\(zone)", length: 32, alphabet: Ident.hex) }

  static func load(_ dir: String) throws -> [Resource] {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
      throw SeedError(description: "--seed-from \(dir): no such directory")
    }
    let report = ManifestLoader.loadDirectory(dir).report
    if !report.isValid {
      let first = report.diagnostics.filter { $0.severity == .error }.prefix(5).map(\.rendered).joined(separator: "\n")
      throw SeedError(
        description: "--seed-from \(dir): the repository does not validate (\(report.errorCount) errors; run ytempire validate):\n\(first)")
    }
    return report.resources
  }

  static func seed(_ resources: [Resource], into w: inout World, now: Date) -> SeedReport {
    var report = SeedReport()
    let published = "2024-01-15T12:00:00Z"
    for r in resources.sorted(by: { $0.name < $1.name }) {
      if let c = r.channel {
        let id = c.youtube.channelId
        let b = c.branding
        // Branding as it was before ytempire: an older description, one keyword fewer, no trailer.
        let oldDescription = "\(b.title): videos about \(r.metadata.labels["niche"] ?? "everything"). (description from before ytempire)"
        var channelBranding: [String: JSON] = ["title": .string(b.title), "description": .string(oldDescription)]
        if let kw = b.keywords { channelBranding["keywords"] = .string(YouTubeKeywords.join(Array(kw.dropLast()))) }
        if let l = b.defaultLanguage { channelBranding["defaultLanguage"] = .string(l) }
        if let country = b.country { channelBranding["country"] = .string(country) }
        let h = Ident.fnv(r.name)
        let channel: JSON = [
          "kind": "youtube#channel", "id": .string(id),
          "snippet": [
            "title": .string(b.title), "description": .string(oldDescription),
            "customUrl": .string("@\(r.name)"), "publishedAt": .string(published),
            "defaultLanguage": JSON.str(b.defaultLanguage), "country": JSON.str(b.country),
            "thumbnails": ["default": ["url": .string("https://yt3.ggpht.com/sandbox/\(r.name)=s88"), "width": 88, "height": 88]],
            "localized": ["title": .string(b.title), "description": .string(oldDescription)],
          ],
          "statistics": [
            "viewCount": .string(String(h % 5_000_000)), "subscriberCount": .string(String(h % 90_000)),
            "hiddenSubscriberCount": false, "videoCount": .string(String(h % 400)),
          ],
          "brandingSettings": [
            "channel": .object(channelBranding),
            "image": ["bannerExternalUrl": .string("https://yt3.ggpht.com/sandbox/\(r.name)-banner")],
          ],
          "status": ["privacyStatus": "public", "isLinked": true, "longUploadsStatus": "allowed"],
        ]
        w.youtube.channels[id] = channel
        let token = refreshToken(for: r.name)
        w.youtube.refreshTokens[token] = id
        report.channels.append(SeededChannel(name: r.name, channelId: id, credentials: c.youtube.credentials, refreshToken: token))
        // The first playlist exists already, with an older description (adoption by title, then update).
        if let p = c.playlists.first {
          let pid = "PL" + Ident.make("seed-playlist-\(r.name)-\(p.name)", length: 32, alphabet: Ident.urlsafe)
          var snippet: [String: JSON] = ["title": .string(p.title), "description": "Older playlist description from before ytempire."]
          if let tags = p.tags { snippet["tags"] = .array(tags.map { .string($0) }) }
          w.youtube.playlists[pid] = [
            "kind": "youtube#playlist", "id": .string(pid),
            "snippet": YouTubeEmulator.fillSnippet(snippet, channel: channel, channelId: id, publishedAt: published),
            "status": ["privacyStatus": .string(p.privacy.rawValue)],
            "contentDetails": ["itemCount": .int(Int(h % 40))],
          ]
          w.youtube.playlistOrder.append(pid)
        }
      }
      if let z = r.cdnZone, z.provider.rawValue == "cloudflare", w.cloudflare.zones[zoneId(z.zone)] == nil {
        let zid = zoneId(z.zone)
        let zone: JSON = [
          "id": .string(zid), "name": .string(z.zone), "status": "active", "paused": false, "type": "full",
          "development_mode": 0,
          "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
          "original_name_servers": .null, "original_registrar": .null,
          "created_on": "2024-01-15T12:00:00.000000Z", "modified_on": "2024-01-15T12:00:00.000000Z",
          "activated_on": "2024-01-15T12:00:00.000000Z",
          "account": ["id": .string(w.cloudflare.accountId), "name": "Sandbox account"],
          "owner": ["id": .null, "type": "user", "email": .null],
          "permissions": ["#zone:read", "#zone_settings:edit", "#cache_purge:edit"],
          "plan": ["id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "name": "Free Website", "price": 0, "currency": "USD"],
        ]
        w.cloudflare.zones[zid] = zone
        w.cloudflare.zoneOrder.append(zid)
        report.zones.append(z.zone)
      }
      if let s = r.securityPolicy, let kr = s.keyRotation, kr.mount == "secret" {
        // Keys written 100 days ago: past a 60d or 90d maxAge, so rotation is due.
        let created = now.timeIntervalSince1970 - 100 * 86400
        for service in kr.maxAge.keys.sorted() {
          let key = kr.path.isEmpty ? service : "\(kr.path)/\(service)"
          if w.vault.kv[key] != nil { continue }
          var e = KVEntry(created: created, updated: created)
          e.versions = [KVVersion(data: ["api_key": .string("sandbox-\(service)-key-v1")], created: created)]
          w.vault.kv[key] = e
          report.secrets.append("secret/\(key)")
        }
      }
    }
    // One zone carries a rule someone made by hand: ytempire must keep rules it does not own.
    if let first = report.zones.sorted().first {
      let zid = zoneId(first)
      let stamp = JSON.string(Timestamp.rfc3339(Date(timeIntervalSince1970: 1_705_320_000), digits: 6))
      w.cloudflare.rulesets[zid, default: [:]]["http_request_cache_settings"] = [
        "id": .string(Ident.make("ruleset-\(zid)", length: 32, alphabet: Ident.hex)), "name": "default", "description": "",
        "kind": "zone", "phase": "http_request_cache_settings", "version": "1", "last_updated": stamp,
        "rules": [
          [
            "id": .string(Ident.make("rule-manual-\(zid)", length: 32, alphabet: Ident.hex)), "ref": "manual-fonts",
            "description": "Cache web fonts (added by hand in the dashboard)",
            "expression": "http.request.uri.path.extension in {\"woff\" \"woff2\"}",
            "action": "set_cache_settings",
            "action_parameters": ["cache": true, "edge_ttl": ["mode": "override_origin", "default": 2_592_000]],
            "enabled": true, "version": "1", "last_updated": stamp,
          ]
        ],
      ]
    }
    // A workflow someone made by hand in n8n, without the ytempire tag.
    if w.n8n.workflows.isEmpty && !report.channels.isEmpty {
      let id = Ident.make("manual-workflow", length: 16)
      w.n8n.workflows[id] = [
        "id": .string(id), "name": "Manual backup", "active": false, "isArchived": false,
        "createdAt": "2024-01-15T12:00:00.000Z", "updatedAt": "2024-01-15T12:00:00.000Z",
        "nodes": [
          [
            "id": "m1", "name": "Manual", "type": "n8n-nodes-base.manualTrigger", "typeVersion": 1,
            "position": [0, 0], "parameters": [:],
          ]
        ],
        "connections": [:], "settings": ["executionOrder": "v1"], "staticData": .null, "pinData": .null,
        "meta": .null, "versionId": .string(Ident.uuid("manual-version")), "triggerCount": 0, "tags": [],
      ]
      w.n8n.order.append(id)
    }
    return report
  }
}
