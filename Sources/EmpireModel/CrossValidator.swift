import Foundation
import YAMLKit

/// The rules that span resources: uniqueness, references, quota arithmetic.
enum CrossValidator {
  /// `invalid`: resources declared with a readable kind and name whose spec had errors.
  static func check(
    _ resources: [Resource], into bag: inout DiagnosticBag, fileExists: (@Sendable (String) -> Bool)?,
    readFile: (@Sendable (String) -> [UInt8]?)? = nil, invalid: Set<ResourceKey> = []
  ) {
    var byKind: [Kind: [String: Resource]] = [:]
    for r in resources {
      if let first = byKind[r.kind]?[r.name] {
        bag.error(
          .duplicateName, "duplicate \(r.kind.rawValue) name '\(r.name)'; names must be unique per kind", at: r.nameMark,
          notes: [.init("first defined here", at: first.nameMark)])
        continue
      }
      byKind[r.kind, default: [:]][r.name] = r
    }
    // A rename's old name is gone: otherwise two resources would claim one set of records.
    var renamedFrom: [ResourceKey: Resource] = [:]
    for r in resources {
      guard let old = r.metadata.annotations[Annotations.renamedFrom], old != r.name else { continue }
      if let still = byKind[r.kind]?[old] {
        bag.error(
          .invalidValue,
          "\(r.kind.rawValue) '\(r.name)' has \(Annotations.renamedFrom): \(old), but \(r.kind.rawValue) '\(old)' is still declared; the annotation names the resource's old name, which must be gone",
          at: r.nameMark, notes: [.init("\(r.kind.rawValue) '\(old)' is declared here", at: still.nameMark)])
      } else if let first = renamedFrom[ResourceKey(kind: r.kind, name: old)] {
        bag.error(
          .duplicateEntry,
          "\(r.kind.rawValue) '\(r.name)' and '\(first.name)' are both \(Annotations.renamedFrom): \(old); one resource can take its records",
          at: r.nameMark, notes: [.init("first renamed here", at: first.nameMark)])
      } else {
        renamedFrom[ResourceKey(kind: r.kind, name: old)] = r
      }
    }
    let chains = byKind[.providerChain] ?? [:]
    let limits = byKind[.rateLimit] ?? [:]
    let channels = byKind[.channel] ?? [:]

    func resolve(_ ref: Reference, _ kind: Kind, in table: [String: Resource], from: String) -> Resource? {
      if let r = table[ref.name] { return r }
      if invalid.contains(ResourceKey(kind: kind, name: ref.name)) {
        bag.error(.unresolvedReference, "\(from) refers to \(kind.rawValue) '\(ref.name)', which is invalid (see its errors)", at: ref.mark)
        return nil
      }
      let hint = Suggest.hint(ref.name, Array(table.keys))
      bag.error(.unresolvedReference, "\(from) refers to \(kind.rawValue) '\(ref.name)', which does not exist\(hint)", at: ref.mark)
      return nil
    }

    // Summed as decimals, exactly: each share is the shortest decimal that reads back as its
    // Double (what was written, up to 17 significant digits), so 0.1 + 0.2 + 0.7 is exactly 1
    // and passes, and 0.5 + 0.5000000001 is 1.0000000001 and fails. No tolerance.
    var shareSum = Decimal(0)
    var shareCount = 0
    var firstOver: (Resource, SourceMark)?
    var governed: [String: Int] = [:]
    for r in resources where r.kind == .channel {
      guard let c = r.channel else { continue }
      if let content = c.content {
        for cap in Capability.allCases {
          guard let ref = content.providers[cap] else { continue }
          if let chain = resolve(ref, .providerChain, in: chains, from: "Channel '\(r.name)' (content.providers.\(cap.rawValue))"),
            let spec = chain.providerChain, spec.capability != cap
          {
            bag.error(
              .wrongCapability,
              "content.providers.\(cap.rawValue) of Channel '\(r.name)' names ProviderChain '\(ref.name)', whose capability is \(spec.capability.rawValue), not \(cap.rawValue)",
              at: ref.mark,
              notes: [.init("capability declared here", at: chain.mark)])
          }
        }
      }
      if let ref = c.rateLimit, resolve(ref, .rateLimit, in: limits, from: "Channel '\(r.name)'") != nil, c.active {
        governed[ref.name, default: 0] += 1
      }
      if c.active, let share = c.limits?.quotaShare {
        shareSum += Self.exactDecimal(share)
        shareCount += 1
        if shareSum > 1, firstOver == nil { firstOver = (r, c.limits?.quotaShareMark ?? r.mark) }
      }
    }
    if let (r, mark) = firstOver {
      bag.error(
        .quotaShareExceeded,
        "the quotaShare of active channels adds up to \(shareSum) over \(shareCount) channels; it must be at most 1 (the total passes 1 at Channel '\(r.name)')",
        at: mark)
    }

    for r in resources where r.kind == .rateLimit {
      guard let q = r.rateLimit?.quota, let reserved = q.reservedPerChannel else { continue }
      let n = governed[r.name] ?? 0
      let emergency = q.emergencyReserve ?? 0
      // Checked: the fields are range-checked when decoded, but the total must not trap whatever they hold.
      let (product, o1) = reserved.multipliedReportingOverflow(by: n)
      let (total, o2) = product.addingReportingOverflow(emergency)
      let overflow = o1 || o2
      if overflow || total > q.units {
        bag.error(
          .quotaReserveExceeded,
          "RateLimit '\(r.name)' reserves \(reserved) units for each of its \(n) active channels plus an emergency reserve of \(emergency): \(overflow ? "more than \(Int.max)" : String(total)) units, more than its quota of \(q.units)",
          at: q.mark)
      }
    }

    for r in resources where r.kind == .schedule {
      guard let s = r.schedule else { continue }
      switch s.targets {
      case .channels(let refs):
        for ref in refs {
          if let ch = resolve(ref, .channel, in: channels, from: "Schedule '\(r.name)'"), ch.channel?.active == false, s.active {
            bag.warning(.inactiveReference, "Schedule '\(r.name)' targets Channel '\(ref.name)', which is not active", at: ref.mark)
          }
        }
      case .selector(let labels, let mark):
        let matches = channels.values.contains { ch in labels.allSatisfy { ch.metadata.labels[$0.key] == $0.value } }
        if !matches {
          let sel = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
          bag.warning(.selectorMatchesNothing, "the channelSelector of Schedule '\(r.name)' (\(sel)) matches no channel", at: mark)
        }
      }
      if case .file(let path) = s.workflow, let fileExists {
        if !fileExists(path) {
          bag.error(
            .missingFile, "workflowFile '\(path)' of Schedule '\(r.name)' does not exist in the repository", at: s.workflowMark ?? r.mark)
        } else if let readFile, let bytes = readFile(path), let problem = workflowProblem(bytes) {
          bag.error(.invalidWorkflowFile, "workflowFile '\(path)' of Schedule '\(r.name)' \(problem)", at: s.workflowMark ?? r.mark)
        }
      }
    }

    for r in resources where r.kind == .providerChain {
      for p in r.providerChain?.providers ?? [] {
        if let ref = p.rateLimit { _ = resolve(ref, .rateLimit, in: limits, from: "provider '\(p.name)' of ProviderChain '\(r.name)'") }
      }
    }

    var zones: [String: Resource] = [:]
    for r in resources where r.kind == .cdnZone {
      guard let z = r.cdnZone else { continue }
      if let first = zones[z.zone] {
        bag.error(
          .duplicateZone,
          "CDNZone '\(r.name)' manages zone \(z.zone), which CDNZone '\(first.name)' already manages; a zone has one cache ruleset",
          at: z.zoneMark,
          notes: [.init("first managed here", at: first.cdnZone!.zoneMark)])
      } else {
        zones[z.zone] = r
      }
      if let fileExists {
        for w in z.workers where !fileExists(w.scriptFile) {
          bag.error(.missingFile, "scriptFile '\(w.scriptFile)' of worker '\(w.name)' does not exist in the repository", at: w.mark)
        }
      }
    }
  }

  /// Why a workflow file is not an n8n workflow export: not JSON, or not a JSON object.
  static func workflowProblem(_ bytes: [UInt8]) -> String? {
    guard let value = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) else {
      return "is not valid JSON"
    }
    guard value is [String: Any] else { return "must hold a JSON object (an n8n workflow), found another JSON value" }
    return nil
  }

  /// The decimal a Double prints as (its shortest round-trip spelling, `0.1` for 0.1), exactly.
  static func exactDecimal(_ d: Double) -> Decimal {
    Decimal(string: "\(d)", locale: Locale(identifier: "en_US_POSIX")) ?? Decimal(d)
  }
}
