import DriverKit
import EmpireModel
import Foundation

/// The built-in workflows (docs/drivers/n8n.md), rendered from a Schedule: its trigger, timezone,
/// parameters, services, timeout and the channels it selects. Node types are ones n8n has today.
enum Templates {
  /// A channel as the workflows see it.
  struct SelectedChannel: Sendable, Equatable {
    var name: String
    var youtubeChannelId: String
    var niche: String?
    var json: JSONValue {
      var o: [String: JSONValue] = ["name": .string(name), "youtube_channel_id": .string(youtubeChannelId)]
      if let niche { o["niche"] = .string(niche) }
      return .object(o)
    }
  }

  /// How the analytics workflow finds its channels.
  enum ChannelSource: Sendable {
    /// Rendered into a Code node (SQLite config store, or no n8n credential named).
    case rendered([SelectedChannel])
    /// Read at run time from the config store's `channels` table through the named credential.
    case postgres(credential: String, sql: String)
  }

  struct Rendered {
    var nodes: [String: JSONValue] = [:]
    var layout: [String: JSONValue] = [:]
    /// A workflow file's own `webhookId`s (its webhook URLs), kept as they are.
    var webhookIds: [String: JSONValue] = [:]
    var connections: [String: JSONValue] = [:]

    mutating func add(
      _ name: String, _ type: String, _ version: Double, at pos: (Int, Int), _ parameters: JSONValue,
      credentials: JSONValue? = nil
    ) {
      var n: [String: JSONValue] = [
        "name": .string(name), "type": .string("n8n-nodes-base." + type),
        "typeVersion": version.rounded() == version ? .int(Int64(version)) : .double(version),
        "parameters": parameters,
      ]
      if let credentials { n["credentials"] = credentials }
      nodes[name] = Canonical.node(n)
      layout[name] = [.int(Int64(pos.0)), .int(Int64(pos.1))]
    }

    /// `from` output `output` → `to` input `input`.
    mutating func connect(_ from: String, _ to: String, output: Int = 0, input: Int = 0) {
      var outputs = connections[from]?["main"]?.array ?? []
      while outputs.count <= output { outputs.append(.array([])) }
      var links = outputs[output].array ?? []
      links.append(["node": .string(to), "type": "main", "index": .int(Int64(input))])
      outputs[output] = .array(links)
      connections[from] = ["main": .array(outputs)]
    }
  }

  // MARK: trigger

  /// `every:` → the interval rule in the largest whole unit; `cron:` → the `cronExpression` rule.
  static func rule(_ t: ScheduleSpec.Trigger) -> JSONValue {
    switch t {
    case .cron(let c):
      return ["field": "cronExpression", "expression": .string(c.source)]
    case .every(let d):
      let ms = d.milliseconds
      if ms % 86_400_000 == 0 { return ["field": "days", "daysInterval": .int(ms / 86_400_000)] }
      if ms % 3_600_000 == 0 { return ["field": "hours", "hoursInterval": .int(ms / 3_600_000)] }
      if ms % 60_000 == 0 { return ["field": "minutes", "minutesInterval": .int(ms / 60_000)] }
      return ["field": "seconds", "secondsInterval": .int(max(1, ms / 1000))]
    }
  }

  static func trigger(_ r: inout Rendered, _ s: ScheduleSpec) {
    r.add("Schedule Trigger", "scheduleTrigger", 1.2, at: (250, 300), ["rule": ["interval": [rule(s.trigger)]]])
  }

  /// `settings`: v1 execution order, the Schedule's timezone and timeout (seconds).
  static func settings(_ s: ScheduleSpec) -> JSONValue {
    var o: [String: JSONValue] = ["executionOrder": "v1", "timezone": .string(s.timezone)]
    if let t = s.timeout { o["executionTimeout"] = .int(max(1, Int64((t.seconds).rounded(.up)))) }
    return .object(o)
  }

  // MARK: parameters

  static func string(_ s: ScheduleSpec, _ key: String, _ fallback: String) -> String {
    switch s.parameters[key] {
    case .string(let v)?: v
    case .number(let d)?: d.rounded() == d ? String(Int64(d)) : String(d)
    case .bool(let b)?: b ? "true" : "false"
    case .duration(let d)?: d.description
    case .list(let l)?: l.joined(separator: ",")
    case nil: fallback
    }
  }

  static func number(_ s: ScheduleSpec, _ key: String, _ fallback: Double) -> JSONValue {
    if case .number(let d)? = s.parameters[key] { return Canonical.numbers(.double(d)) }
    return Canonical.numbers(.double(fallback))
  }

  static func seconds(_ s: ScheduleSpec, _ key: String, _ fallback: Int64) -> Int64 {
    if case .duration(let d)? = s.parameters[key] { return max(0, Int64(d.seconds.rounded())) }
    return fallback
  }

  static func list(_ s: ScheduleSpec, _ key: String, _ fallback: [String]) -> [String] {
    if case .list(let l)? = s.parameters[key], !l.isEmpty { return l }
    return fallback
  }

  static func service(_ s: ScheduleSpec, _ key: String, _ fallback: String) -> String {
    var u = s.services[key] ?? fallback
    while u.hasSuffix("/") { u.removeLast() }
    return u
  }

  static func keypairs(_ pairs: [(String, JSONValue)]) -> JSONValue {
    ["parameters": .array(pairs.map { ["name": .string($0.0), "value": $0.1] })]
  }

  static func httpOptions(_ s: ScheduleSpec) -> JSONValue {
    guard let t = s.timeout else { return .object([:]) }
    return ["timeout": .int(t.milliseconds)]
  }

  static func channelsCode(_ channels: [SelectedChannel]) -> JSONValue {
    let list = JSONValue.array(channels.map(\.json)).canonicalString
    let code = """
      // Rendered by ytempire from the Schedule's channels: a change of channels updates this node.
      const channels = \(list);
      return channels.map((channel) => ({ json: channel }));
      """
    return ["mode": "runOnceForAllItems", "language": "javaScript", "jsCode": .string(code)]
  }

  // MARK: content-generation

  /// The seed's master content workflow: trends → virality check → script → voice and visuals
  /// (two branches joined by a Merge node: n8n has no `parallel` node) → wait for the media → publish.
  static func contentGeneration(_ s: ScheduleSpec, channels: [SelectedChannel]) -> Rendered {
    var r = Rendered()
    trigger(&r, s)
    r.add("Channels", "code", 2, at: (450, 300), channelsCode(channels))
    let trends = service(s, "trends", "http://localhost:8001")
    let scripts = service(s, "scripts", "http://localhost:8002")
    let media = service(s, "media", "http://localhost:8003")
    let publisher = service(s, "publisher", "http://localhost:8004")
    let today: JSONValue = "={{ $today.toFormat('yyyy-MM-dd') }}"
    r.add(
      "Trend Analysis", "httpRequest", 4.2, at: (650, 300),
      [
        "method": "POST", "url": .string(trends + "/api/v1/trends/analyze"), "sendBody": true,
        "bodyParameters": keypairs([
          ("start", today), ("end", today), ("category", "={{ $json.niche }}"),
          ("channel", "={{ $json.name }}"),
        ]),
        "options": httpOptions(s),
      ])
    r.add(
      "Virality Check", "if", 2, at: (850, 300),
      [
        "conditions": [
          "options": ["caseSensitive": true, "leftValue": "", "typeValidation": "loose"],
          "conditions": [
            [
              "id": .string(Canonical.derivedId("virality", "condition")),
              "leftValue": "={{ $json.virality_score }}",
              "rightValue": number(s, "viralityThreshold", 0.8),
              "operator": ["type": "number", "operation": "gte"],
            ]
          ],
          "combinator": "and",
        ],
        "options": .object([:]),
      ])
    r.add(
      "Generate Script", "httpRequest", 4.2, at: (1050, 200),
      [
        "method": "POST", "url": .string(scripts + "/api/v1/generate/script"), "sendBody": true,
        "bodyParameters": keypairs([
          ("topic", "={{ $json.topic }}"), ("style", .string(string(s, "style", "educational"))),
          ("duration", .int(seconds(s, "duration", 600))),
        ]),
        "options": httpOptions(s),
      ])
    r.add(
      "Generate Voice", "httpRequest", 4.2, at: (1250, 100),
      [
        "method": "POST", "url": .string(media + "/api/v1/synthesize/speech"), "sendBody": true,
        "bodyParameters": keypairs([("text", "={{ $json.script }}"), ("voice", .string(string(s, "voice", "professional_male")))]),
        "options": httpOptions(s),
      ])
    r.add(
      "Generate Visuals", "httpRequest", 4.2, at: (1250, 300),
      [
        "method": "POST", "url": .string(media + "/api/v1/generate/visuals"), "sendBody": true,
        "bodyParameters": keypairs([("script", "={{ $json.script }}"), ("style", .string(string(s, "visualStyle", "modern_dynamic")))]),
        "options": httpOptions(s),
      ])
    r.add("Merge Media", "merge", 3, at: (1450, 200), ["mode": "combine", "combineBy": "combineByPosition", "options": .object([:])])
    r.add(
      "Wait for Processing", "wait", 1.1, at: (1650, 200),
      [
        "resume": "webhook", "options": ["webhookSuffix": .string(string(s, "readyWebhook", "video-ready"))],
      ])
    r.add(
      "Publish to YouTube", "httpRequest", 4.2, at: (1850, 200),
      [
        "method": "POST", "url": .string(publisher + "/api/v1/publish/video"), "sendBody": true,
        "bodyParameters": keypairs([
          ("video_path", "={{ $json.video_path }}"), ("metadata", "={{ $json.metadata }}"),
          ("channel", "={{ $('Channels').item.json.youtube_channel_id }}"),
        ]),
        "options": httpOptions(s),
      ])
    r.connect("Schedule Trigger", "Channels")
    r.connect("Channels", "Trend Analysis")
    r.connect("Trend Analysis", "Virality Check")
    r.connect("Virality Check", "Generate Script")  // output 0: true
    r.connect("Generate Script", "Generate Voice")
    r.connect("Generate Script", "Generate Visuals")
    r.connect("Generate Voice", "Merge Media", input: 0)
    r.connect("Generate Visuals", "Merge Media", input: 1)
    r.connect("Merge Media", "Wait for Processing")
    r.connect("Wait for Processing", "Publish to YouTube")
    return r
  }

  // MARK: analytics-collection

  /// SQL text literal.
  static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }

  /// The query of the Postgres node: the active channels ytempire converges that the Schedule selects.
  static func channelsSQL(_ targets: ScheduleSpec.Targets) -> String {
    let base = "SELECT name, youtube_channel_id, labels->>'niche' AS niche FROM channels WHERE active = true AND managed_by = 'ytempire'"
    switch targets {
    case .channels(let refs):
      let names = refs.map(\.name).sorted().map(quote).joined(separator: ", ")
      return base + " AND name IN (\(names.isEmpty ? "NULL" : names)) ORDER BY name"
    case .selector(let labels, _):
      let json = JSONValue.object(labels.mapValues(JSONValue.string)).canonicalString
      return base + " AND labels @> \(quote(json))::jsonb ORDER BY name"
    }
  }

  /// The seed's analytics workflow: channels → one batch at a time → YouTube Analytics report →
  /// derived metrics → upsert; when every batch is done, rows past the retention are deleted.
  static func analyticsCollection(_ s: ScheduleSpec, source: ChannelSource) -> Rendered {
    var r = Rendered()
    trigger(&r, s)
    var postgresCredential: String?
    switch source {
    case .rendered(let channels):
      r.add("Channels", "code", 2, at: (450, 300), channelsCode(channels))
    case .postgres(let credential, let sql):
      postgresCredential = credential
      r.add(
        "Channels", "postgres", 2.5, at: (450, 300), ["operation": "executeQuery", "query": .string(sql), "options": .object([:])],
        credentials: ["postgres": ["name": .string(credential)]])
    }
    let batch = number(s, "batchSize", 1)
    r.add("Split Channels", "splitInBatches", 3, at: (650, 300), ["batchSize": batch, "options": .object([:])])
    let api = service(s, "analytics", "https://youtubeanalytics.googleapis.com/v2")
    let lookbackDays = max(1, (seconds(s, "lookback", 86_400) + 86_399) / 86_400)
    r.add(
      "Fetch YouTube Analytics", "httpRequest", 4.2, at: (850, 400),
      [
        "method": "GET", "url": .string(api + "/reports"), "sendQuery": true,
        "queryParameters": keypairs([
          ("ids", "=channel=={{ $json.youtube_channel_id }}"),
          (
            "metrics",
            .string(
              list(
                s, "metrics",
                ["views", "estimatedMinutesWatched", "averageViewDuration", "likes", "comments", "shares", "subscribersGained"]
              ).joined(separator: ","))
          ),
          ("dimensions", .string(list(s, "dimensions", ["day", "video"]).joined(separator: ","))),
          ("startDate", .string("={{ $today.minus({days: \(lookbackDays)}).toFormat('yyyy-MM-dd') }}")),
          ("endDate", "={{ $today.toFormat('yyyy-MM-dd') }}"),
        ]),
        "options": httpOptions(s),
      ])
    let process = """
      // One row per (channel, video, day): the report's columns by name, plus derived metrics.
      // The request answers one report per channel of the batch, in the batch's order.
      const batch = $('Split Channels').all();
      const out = [];
      for (const [i, item] of $input.all().entries()) {
        const channel = (batch[i] || batch[0]).json;
        const report = item.json;
        const names = (report.columnHeaders || []).map((h) => h.name);
        for (const row of report.rows || []) {
          const m = Object.fromEntries(names.map((n, i) => [n, row[i]]));
          const views = Number(m.views || 0);
          const engaged = Number(m.likes || 0) + Number(m.comments || 0) + Number(m.shares || 0);
          out.push({ json: {
            channel_id: channel.youtube_channel_id, video_id: m.video || '', date: m.day,
            metrics: m, calculated_metrics: { engagement_rate: views > 0 ? engaged / views : 0 },
          } });
        }
      }
      return out;
      """
    r.add(
      "Process Analytics", "code", 2, at: (1050, 400), ["mode": "runOnceForAllItems", "language": "javaScript", "jsCode": .string(process)])
    let retentionDays = max(1, (seconds(s, "retention", 90 * 86_400) + 86_399) / 86_400)
    if let credential = postgresCredential {
      let upsert =
        "INSERT INTO analytics (channel_id, video_id, date, metrics, calculated_metrics) VALUES ($1, $2, $3::date, $4::jsonb, $5::jsonb) "
        + "ON CONFLICT (channel_id, video_id, date) DO UPDATE SET metrics = EXCLUDED.metrics, calculated_metrics = EXCLUDED.calculated_metrics"
      let creds: JSONValue = ["postgres": ["name": .string(credential)]]
      r.add(
        "Store Analytics", "postgres", 2.5, at: (1250, 400),
        [
          "operation": "executeQuery", "query": .string(upsert),
          "options": [
            "queryReplacement":
              "={{ [$json.channel_id, $json.video_id, $json.date, JSON.stringify($json.metrics), JSON.stringify($json.calculated_metrics)] }}"
          ],
        ], credentials: creds)
      r.add(
        "Apply Retention", "postgres", 2.5, at: (850, 200),
        [
          "operation": "executeQuery",
          "query": .string("DELETE FROM analytics WHERE date < CURRENT_DATE - INTERVAL '\(retentionDays) days'"),
          "options": .object([:]),
        ], credentials: creds)
      r.connect("Split Channels", "Apply Retention", output: 0)  // done
    } else {
      // n8n cannot write the SQLite file: the rows go to the analytics service.
      let store = service(s, "storage", "http://localhost:8005")
      r.add(
        "Store Analytics", "httpRequest", 4.2, at: (1250, 400),
        [
          "method": "POST", "url": .string(store + "/api/v1/analytics"), "sendBody": true,
          "bodyParameters": keypairs([("rows", "={{ $json }}"), ("retentionDays", .int(retentionDays))]),
          "options": httpOptions(s),
        ])
    }
    r.connect("Schedule Trigger", "Channels")
    r.connect("Channels", "Split Channels")
    r.connect("Split Channels", "Fetch YouTube Analytics", output: 1)  // loop
    r.connect("Fetch YouTube Analytics", "Process Analytics")
    r.connect("Process Analytics", "Store Analytics")
    r.connect("Store Analytics", "Split Channels")
    return r
  }
}
