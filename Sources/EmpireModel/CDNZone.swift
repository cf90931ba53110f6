import YAMLKit

public struct CDNZoneSpec: Sendable {
  public enum Provider: String, Sendable, CaseIterable { case cloudflare }
  public enum ZoneType: String, Sendable, CaseIterable { case pull, push }
  public enum Storage: String, Sendable, CaseIterable { case r2 }
  public enum CacheLevel: String, Sendable, CaseIterable { case aggressive, standard, bypass }
  public enum Polish: String, Sendable, CaseIterable { case off, lossless, lossy }
  public struct Rule: Sendable, Equatable {
    public var name: String
    public var match: [String]
    public var edgeTTL: ModelDuration?
    public var browserTTL: ModelDuration?
    public var cacheLevel: CacheLevel
    public var polish: Polish?
    public var webp: Bool?
    public init(
      name: String, match: [String], edgeTTL: ModelDuration? = nil, browserTTL: ModelDuration? = nil, cacheLevel: CacheLevel,
      polish: Polish? = nil, webp: Bool? = nil
    ) {
      self.name = name
      self.match = match
      self.edgeTTL = edgeTTL
      self.browserTTL = browserTTL
      self.cacheLevel = cacheLevel
      self.polish = polish
      self.webp = webp
    }
  }
  public struct Worker: Sendable {
    public var name: String
    public var route: String
    public var scriptFile: String
    public var mark: SourceMark
  }

  public var provider: Provider
  public var zone: String
  public var zoneMark: SourceMark
  public var type: ZoneType
  public var origin: String?
  public var storage: Storage?
  public var rules: [Rule]
  public var replication: [String]
  public var workers: [Worker]
}

extension NodeDecoder {
  func cdnZoneSpec(_ node: YAMLNode, _ path: String) -> CDNZoneSpec? {
    guard let f = mapping(node, path, known: ["provider", "zone", "type", "origin", "storage", "rules", "replication", "workers"]) else {
      return nil
    }
    requireFields(f, ["provider", "zone", "type"])
    let provider = enumeration(f, "provider", CDNZoneSpec.Provider.self)
    let zone = pattern(f, "zone", what: "a DNS zone name such as example.com (lowercase)") { s in
      let labels = s.split(separator: ".", omittingEmptySubsequences: false)
      return s.count <= 253 && labels.count >= 2 && labels.allSatisfy { Names.isValid(String($0)) } && labels.last!.allSatisfy(\.isLetter)
        && labels.last!.count >= 2
    }
    let type = enumeration(f, "type", CDNZoneSpec.ZoneType.self)
    let origin = url(f, "origin")
    let storage = enumeration(f, "storage", CDNZoneSpec.Storage.self)
    if type == .push, f.has("origin") {
      diags.warning(.invalidValue, "\(f.sub("origin")) is ignored on a push zone (content is pushed to storage)", at: f.keyMark("origin")!)
    }
    if type == .pull, f.has("storage") {
      diags.error(.invalidValue, "\(f.sub("storage")) only applies to push zones; this zone's type is pull", at: f.keyMark("storage")!)
    }
    if type == .pull, !f.has("origin") {
      diags.error(.missingField, "\(f.path) is a pull zone and needs 'origin'", at: f.node.mark)
    }

    var rules: [CDNZoneSpec.Rule] = []
    var ruleNames: [Reference] = []
    if let items = list(f, "rules") {
      for (p, n) in items {
        guard let m = mapping(n, p, known: ["name", "match", "edgeTTL", "browserTTL", "cacheLevel", "polish", "webp"]) else { continue }
        requireFields(m, ["name", "match", "cacheLevel"])
        let name = self.name(m, "name")
        let match = stringList(m, "match", maxLength: 200) { CacheMatch.problem($0) }
        if let match, match.isEmpty, let mn = m.value("match") {
          diags.error(.outOfRange, "\(m.sub("match")) must list at least one pattern", at: mn.mark)
        }
        let level = enumeration(m, "cacheLevel", CDNZoneSpec.CacheLevel.self)
        let rule = CDNZoneSpec.Rule(
          name: name?.name ?? "", match: match ?? [], edgeTTL: duration(m, "edgeTTL"), browserTTL: duration(m, "browserTTL"),
          cacheLevel: level ?? .standard, polish: enumeration(m, "polish", CDNZoneSpec.Polish.self), webp: bool(m, "webp"))
        if let name, level != nil, let match, !match.isEmpty {
          rules.append(rule)
          ruleNames.append(name)
        }
      }
      checkUnique(ruleNames, in: f.sub("rules"))
    }
    let replication =
      stringList(f, "replication", maxLength: 63) { s in
        s.split(separator: "-", omittingEmptySubsequences: false).allSatisfy {
          !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isLowercase }
        }
          ? nil : "must be a region name such as us-east"
      } ?? []
    if type == .pull, !replication.isEmpty {
      diags.error(
        .invalidValue, "\(f.sub("replication")) only applies to push zones; this zone's type is pull", at: f.keyMark("replication")!)
    }
    var workers: [CDNZoneSpec.Worker] = []
    if let items = list(f, "workers") {
      for (p, n) in items {
        guard let m = mapping(n, p, known: ["name", "route", "scriptFile"]) else { continue }
        requireFields(m, ["name", "route", "scriptFile"])
        let name = self.name(m, "name")
        var route = string(m, "route", maxLength: 200, minLength: 1)
        if let r = route, let zone, let problem = WorkerRoute.problem(r, zone: zone) {
          diags.error(
            .invalidValue, "\(m.sub("route")) '\(r)' is not a route Cloudflare can express: \(problem)", at: m.value("route")!.mark)
          route = nil
        }
        let script = relativePath(m, "scriptFile", suffix: ".js")
        if let name, let route, let script {
          workers.append(.init(name: name.name, route: route, scriptFile: script, mark: m.value("scriptFile")!.mark))
        }
      }
      checkUnique(workers.map { Reference(name: $0.name, mark: $0.mark) }, in: f.sub("workers"))
    }
    guard let provider, let zone, let type else { return nil }
    return CDNZoneSpec(
      provider: provider, zone: zone, zoneMark: f.value("zone")!.mark, type: type, origin: origin, storage: storage,
      rules: rules, replication: replication, workers: workers)
  }
}

/// Cache rule match patterns: `*.ext` (extension), `/prefix/*` (path prefix) or an exact `/path`.
public enum CacheMatch: Sendable, Equatable {
  case `extension`(String)
  case prefix(String)
  case exact(String)
  case suffix(String)

  public init?(_ s: String) {
    if s.hasPrefix("*.") {
      let ext = s.dropFirst(2)
      guard !ext.isEmpty, !ext.contains("*"), !ext.contains("/") else { return nil }
      self = ext.contains(".") ? .suffix(String(s.dropFirst())) : .extension(String(ext))
    } else if s.hasPrefix("/") {
      if s.hasSuffix("/*") {
        let p = s.dropLast()
        guard !p.contains("*") else { return nil }
        self = .prefix(String(p))
      } else {
        guard !s.contains("*") else { return nil }
        self = .exact(s)
      }
    } else {
      return nil
    }
  }

  static func problem(_ s: String) -> String? {
    CacheMatch(s) == nil ? "must be *.ext, *.suffix.ext, /path/* or an exact /path" : nil
  }
}

/// Cloudflare Workers route patterns: `host/path` on a host of the zone, where `*` may only
/// start the host (`*.example.com`, `*example.com`) and end the path (`/img/*`).
public enum WorkerRoute {
  /// Why `route` is not a Cloudflare route on `zone`, or nil when it is one.
  public static func problem(_ route: String, zone: String) -> String? {
    let example = "e.g. *\(zone)/* or \(zone)/video/*"
    if route.contains("://") { return "write it without a scheme (host/path, \(example))" }
    guard let slash = route.firstIndex(of: "/"), slash != route.startIndex else {
      return
        "a route is host/path on the zone \(zone) (\(example)); a pattern without a host such as '*.jpg' or '/video/*' has no Cloudflare form"
    }
    var host = Substring(route[..<slash])
    let path = route[slash...]
    if host.hasPrefix("*") {
      host = host.dropFirst()
      if host.hasPrefix(".") { host = host.dropFirst() }
    }
    if host.contains("*") { return "'*' may only start the host (\(example))" }
    guard !host.isEmpty, host.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-" || $0 == ".") }) else {
      return "the host must be a lowercase host name of the zone \(zone) (\(example))"
    }
    guard host == zone || host.hasSuffix("." + zone) else {
      return "the host '\(host)' is not in the zone \(zone) (\(example))"
    }
    if path.contains("?") || path.contains("#") { return "a route cannot match a query string or fragment" }
    if path.dropLast().contains("*") { return "'*' may only end the path (\(example)); '\(path)' has it inside" }
    return nil
  }
}
