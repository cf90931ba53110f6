import YAMLKit

public let apiVersionV1 = "ytempire.io/v1"

public enum Kind: String, Sendable, CaseIterable, Codable, Comparable {
  case channel = "Channel"
  case schedule = "Schedule"
  case providerChain = "ProviderChain"
  case rateLimit = "RateLimit"
  case cdnZone = "CDNZone"
  case securityPolicy = "SecurityPolicy"
  case monitor = "Monitor"

  public static func < (a: Kind, b: Kind) -> Bool {
    allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
  }
}

public struct Metadata: Sendable, Hashable {
  public var name: String
  public var labels: [String: String]
  public var annotations: [String: String]
}

/// Indirect so that a Resource is a few words: copying one (sorting, indexing, cross
/// checks) retains one box instead of every field of the spec.
public indirect enum Spec: Sendable {
  case channel(ChannelSpec)
  case schedule(ScheduleSpec)
  case providerChain(ProviderChainSpec)
  case rateLimit(RateLimitSpec)
  case cdnZone(CDNZoneSpec)
  case securityPolicy(SecurityPolicySpec)
  case monitor(MonitorSpec)
}

/// One decoded document of the desired-state repository.
public struct Resource: Sendable {
  public var kind: Kind
  public var metadata: Metadata
  public var spec: Spec
  /// Where the document starts and where its name is written.
  public var mark: SourceMark
  public var nameMark: SourceMark

  public var name: String { metadata.name }
  public var id: String { "\(kind.rawValue)/\(metadata.name)" }

  public var channel: ChannelSpec? { if case .channel(let s) = spec { s } else { nil } }
  public var schedule: ScheduleSpec? { if case .schedule(let s) = spec { s } else { nil } }
  public var providerChain: ProviderChainSpec? { if case .providerChain(let s) = spec { s } else { nil } }
  public var rateLimit: RateLimitSpec? { if case .rateLimit(let s) = spec { s } else { nil } }
  public var cdnZone: CDNZoneSpec? { if case .cdnZone(let s) = spec { s } else { nil } }
  public var securityPolicy: SecurityPolicySpec? { if case .securityPolicy(let s) = spec { s } else { nil } }
  public var monitor: MonitorSpec? { if case .monitor(let s) = spec { s } else { nil } }
}

/// Annotations `ytempire` understands.
public enum Annotations {
  public static let prune = "ytempire.io/prune"
  public static let drift = "ytempire.io/drift"
  /// The name the resource had before: its records and external objects move to the new name.
  public static let renamedFrom = "ytempire.io/renamed-from"
  /// On a Channel: `"true"` lets apply delete its playlists that still hold videos.
  public static let deleteNonEmpty = "ytempire.io/delete-nonempty"
}

extension NodeDecoder {
  /// Decodes one document into a resource. Returns nil (with the problems in `diags`)
  /// when the envelope or a required part of the spec is unusable; a resource whose
  /// optional fields had errors is still returned, and the run fails on the recorded errors.
  func resource(_ root: YAMLNode) -> Resource? {
    guard let top = mapping(root, "resource", known: ["apiVersion", "kind", "metadata", "spec"]) else { return nil }
    requireFields(top, ["apiVersion", "kind", "metadata", "spec"])

    if let n = top.value("apiVersion"), let v = string(n, "apiVersion"), v != apiVersionV1 {
      diags.error(.unknownApiVersion, "unknown apiVersion '\(v)'; this version of ytempire reads \(apiVersionV1)", at: n.mark)
    }
    var kind: Kind?
    if let n = top.value("kind"), let k = string(n, "kind") {
      kind = Kind(rawValue: k)
      if kind == nil {
        let all = Kind.allCases.map(\.rawValue)
        diags.error(.unknownKind, "unknown kind '\(k)'; expected one of \(all.joined(separator: ", "))\(Suggest.hint(k, all))", at: n.mark)
      }
    }
    guard let kind else { return nil }

    var meta: Metadata?
    var nameMark = root.mark
    if let mn = top.value("metadata"), let m = mapping(mn, "\(kind.rawValue).metadata", known: ["name", "labels", "annotations"]) {
      requireFields(m, ["name"])
      if let r = name(m, "name") {
        nameMark = r.mark
        let labels = stringMap(m, "labels", keyCheck: Names.labelKeyProblem) ?? [:]
        let annotations = stringMap(m, "annotations", keyCheck: Names.labelKeyProblem) ?? [:]
        checkAnnotations(annotations, m)
        meta = Metadata(name: r.name, labels: labels, annotations: annotations)
      }
    }
    guard let specNode = top.value("spec") else { return nil }
    let path = "\(kind.rawValue).spec"
    let spec: Spec?
    switch kind {
    case .channel: spec = channelSpec(specNode, path).map(Spec.channel)
    case .schedule: spec = scheduleSpec(specNode, path).map(Spec.schedule)
    case .providerChain: spec = providerChainSpec(specNode, path).map(Spec.providerChain)
    case .rateLimit: spec = rateLimitSpec(specNode, path).map(Spec.rateLimit)
    case .cdnZone: spec = cdnZoneSpec(specNode, path).map(Spec.cdnZone)
    case .securityPolicy: spec = securityPolicySpec(specNode, path).map(Spec.securityPolicy)
    case .monitor: spec = monitorSpec(specNode, path).map(Spec.monitor)
    }
    guard let meta, let spec else {
      // Declared but unusable: references to it say it is invalid, not missing.
      if let meta { invalidDeclared.append(ResourceKey(kind: kind, name: meta.name)) }
      return nil
    }
    return Resource(kind: kind, metadata: meta, spec: spec, mark: root.mark, nameMark: nameMark)
  }

  private func checkAnnotations(_ a: [String: String], _ m: Fields) {
    guard let node = m.value("annotations"), let es = entries(node, m.sub("annotations")) else { return }
    for e in es {
      let allowed: [String]
      switch e.key {
      case Annotations.prune: allowed = ["true", "false"]
      case Annotations.drift: allowed = ["correct", "report"]
      case Annotations.deleteNonEmpty: allowed = ["true", "false"]
      case Annotations.renamedFrom:
        if let v = a[e.key], !Names.isValid(v) {
          diags.error(.invalidName, "annotation \(e.key) '\(clip(v))' is not a valid name: \(Names.rule)", at: e.value.mark)
        } else if let v = a[e.key], v == m.node["name"]?.scalarText {
          diags.error(
            .invalidValue, "annotation \(e.key) names the resource itself; it is the name the resource had before", at: e.value.mark)
        }
        continue
      default: continue
      }
      if let v = a[e.key], !allowed.contains(v) {
        diags.error(
          .invalidEnum, "annotation \(e.key) is '\(v)'; expected \(allowed.map { "\"\($0)\"" }.joined(separator: " or "))", at: e.value.mark
        )
      }
    }
  }
}
