import DriverKit
import Foundation

/// Desired vs observed → actions. Pure.
enum CloudflareDiff {

  static func call(_ input: DiffInput, _ op: String) -> PlannedCall { input.pricing.call(CloudflareDriver.service, op) }

  static func actions(_ input: DiffInput, driver: String) -> [Action] {
    let d = (input.desired?.isNull ?? true) ? nil : input.desired
    let o = input.observed
    if o.isNull { return [] }
    if d?["problems"] != nil { return [] }
    var forward: [Action] = []
    var deletes: [Action] = []
    func action(_ op: ActionOperation, _ key: String, _ summary: String, _ changes: [FieldChange], _ calls: [String], _ payload: JSONValue)
      -> Action
    {
      Action(
        driver: driver, resource: input.id, operation: op, key: key, summary: summary, changes: changes,
        calls: calls.map { call(input, $0) }, payload: payload)
    }
    typealias Op = CloudflareDriver.Op

    // Rules: one whole-phase write for what is added or changed, one for what is pruned.
    for p in CloudflareDriver.phases {
      let have = o[p.observed]?["rules"]?.array ?? []
      let haveByRef = Dictionary(have.compactMap { r in r["ref"]?.string.map { ($0, r) } }, uniquingKeysWith: { a, _ in a })
      let label = p.phase == Phase.cache ? "cache rules" : "configuration rules"
      let key = p.desired
      func named(_ rules: [JSONValue]) -> JSONValue {
        .object(
          Dictionary(
            rules.compactMap { r in r["ref"]?.string.map { (String($0.dropFirst(Canonical.refPrefix.count)), r) } },
            uniquingKeysWith: { a, _ in a }))
      }
      var removeRefs: [String] = []
      if let want = d?[p.desired]?.array {
        let wantRefs = want.compactMap { $0["ref"]?.string }
        let kept = have.filter { r in r["ref"]?.string.map(wantRefs.contains) ?? false }
        removeRefs = have.compactMap { $0["ref"]?.string }.filter { !wantRefs.contains($0) }
        if kept != want {
          var changes = JSONDiff.changes(named(kept), named(want), prefix: key)
          if changes.isEmpty {
            changes = [FieldChange(path: key + ".order", old: JSONValue(kept.compactMap { $0["ref"]?.string }), new: JSONValue(wantRefs))]
          }
          let op: ActionOperation = have.isEmpty ? .create : .update
          let added = want.filter { haveByRef[$0["ref"]?.string ?? ""] == nil }.count
          forward.append(
            action(
              op, "rules/\(p.observed)",
              "\(label): \(want.count - added) kept or changed, \(added) added (whole-phase write of \(p.phase))",
              changes, [Op.rulesetsGet, Op.rulesetsUpdate], ["phase": .string(p.phase), "set": .array(want)]))
        }
      } else {
        removeRefs = have.compactMap { $0["ref"]?.string }
      }
      if !removeRefs.isEmpty {
        let removed = removeRefs.compactMap { haveByRef[$0] }
        deletes.append(
          action(
            .delete, "rules/\(p.observed)/prune", "\(label): remove \(removeRefs.joined(separator: ", "))",
            JSONDiff.changes(named(removed), nil, prefix: key), [Op.rulesetsGet, Op.rulesetsUpdate],
            ["phase": .string(p.phase), "remove": JSONValue(removeRefs)]))
      }
    }

    // Zone settings ytempire manages (never reset when they leave the repository).
    for (id, value) in (d?["settings"]?.object ?? [:]).sorted(by: { $0.key < $1.key }) {
      let now = o["settings"]?[id]
      if now != value {
        forward.append(
          action(
            .update, "setting/\(id)", "zone setting \(id) = \(value.string ?? value.canonicalString)",
            [FieldChange(path: "settings.\(id)", old: now, new: value)], [Op.settingsUpdate],
            ["id": .string(id), "value": value]))
      }
    }

    // Workers: the script, then its route.
    let want = d?["workers"]?.object ?? [:]
    let seen = o["workers"]?.object ?? [:]
    var routeForward: [Action] = []
    for name in want.keys.sorted() {
      let w = want[name]!
      let ow = seen[name]
      let sha = ow?["sha256"] ?? .null
      if sha != w["sha256"] {
        forward.append(
          action(
            sha == .null ? .create : .update, "script/\(name)", "Workers script \(name) from \(w["scriptFile"]?.string ?? "?")",
            [FieldChange(path: "workers.\(name).sha256", old: sha, new: w["sha256"])], [Op.scriptsUpload],
            ["name": .string(name), "scriptFile": w["scriptFile"] ?? .null, "sha256": w["sha256"] ?? .null]))
      }
      let route = ow?["route"] ?? .null
      let pattern = w["route"] ?? .null
      if route == .null {
        routeForward.append(
          action(
            .create, "route/\(name)", "route \(pattern.string ?? "?") → \(name)",
            [FieldChange(path: "workers.\(name).route", old: nil, new: pattern)], [Op.routesCreate],
            ["name": .string(name), "pattern": pattern]))
      } else if route["pattern"] != pattern || route["script"] != .string(name) {
        var changes: [FieldChange] = []
        if route["pattern"] != pattern { changes.append(FieldChange(path: "workers.\(name).route", old: route["pattern"], new: pattern)) }
        if route["script"] != .string(name) {
          changes.append(FieldChange(path: "workers.\(name).routeScript", old: route["script"], new: .string(name)))
        }
        routeForward.append(
          action(
            .update, "route/\(name)", "route \(pattern.string ?? "?") → \(name)", changes, [Op.routesUpdate],
            ["name": .string(name), "pattern": pattern, "id": route["id"] ?? .null]))
      }
    }
    forward += routeForward
    var scriptDeletes: [Action] = []
    for name in seen.keys.sorted() where want[name] == nil {
      let ow = seen[name]!
      if let route = ow["route"], route != .null {
        deletes.append(
          action(
            .delete, "route/\(name)", "route \(route["pattern"]?.string ?? "?") of \(name)",
            [FieldChange(path: "workers.\(name).route", old: route["pattern"], new: nil)], [Op.routesDelete],
            ["name": .string(name), "id": route["id"] ?? .null]))
      }
      if let sha = ow["sha256"], sha != .null {
        scriptDeletes.append(
          action(
            .delete, "script/\(name)", "Workers script \(name)",
            [FieldChange(path: "workers.\(name).sha256", old: sha, new: nil)], [Op.scriptsDelete],
            ["name": .string(name)]))
      }
    }
    deletes += scriptDeletes

    // R2 buckets: created where missing, pruned when no longer desired; a location cannot change.
    let wantB = d?["buckets"]?.object ?? [:]
    let seenB = o["buckets"]?.object ?? [:]
    for name in wantB.keys.sorted() where seenB[name] == nil {
      let hint = wantB[name]?["location"] ?? .null
      var payload: [String: JSONValue] = ["name": .string(name)]
      if hint != .null { payload["locationHint"] = hint }
      forward.append(
        action(
          .create, "bucket/\(name)", "R2 bucket \(name)" + (hint.string.map { " (location hint \($0))" } ?? ""),
          [FieldChange(path: "buckets.\(name).location", old: nil, new: hint)], [Op.bucketsCreate], .object(payload)))
    }
    for name in seenB.keys.sorted() where wantB[name] == nil {
      deletes.append(
        action(
          .delete, "bucket/\(name)", "R2 bucket \(name)",
          [FieldChange(path: "buckets.\(name).location", old: seenB[name]?["location"], new: nil)], [Op.bucketsDelete],
          ["name": .string(name)]))
    }
    return forward + deletes
  }

  /// A bucket whose location is not the desired hint: R2 cannot move a bucket, so it is reported.
  static func findings(_ input: DiffInput) -> [Finding] {
    guard let want = input.desired?["buckets"]?.object, let seen = input.observed["buckets"]?.object else { return [] }
    var out: [Finding] = []
    for name in want.keys.sorted() {
      guard let hint = want[name]?["location"]?.string, let loc = seen[name]?["location"]?.string, loc != hint else { continue }
      out.append(
        Finding(
          condition: .storageLocationMismatch, reason: .bucketLocation,
          message:
            "R2 bucket \(name) is in \(loc), not \(hint) (region \(want[name]?["region"]?.string ?? "?")); a bucket cannot move: recreate it by hand if the data may be moved"
        ))
    }
    return out
  }
}

extension ConditionType {
  /// An R2 bucket is not where its location hint says (a bucket cannot move).
  public static let storageLocationMismatch = ConditionType("StorageLocationMismatch")
}

extension ConditionReason {
  public static let bucketLocation = ConditionReason("BucketLocation")
}
