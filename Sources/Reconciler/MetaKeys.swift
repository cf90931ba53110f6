import Foundation

/// The names under which the state store keeps run-wide facts: one spelling, written and read
/// through these cases only (a key read under one name and written under another is how the
/// history-rewrite check once never fired).
public enum MetaKey: String, Sendable, CaseIterable {
  /// The revision whose apply left nothing failed or deferred.
  case lastAppliedRevision
  /// The revision of the last apply, whatever its outcome.
  case lastAttemptedRevision
  /// The commit the source last answered with (JSON `SourceMark`): what an unreachable source falls back to.
  case sourceLastGood = "source.lastGood"
  /// The commit last applied from the source (JSON `SourceMark`): what a force-push is checked against.
  case sourceLastApplied = "source.lastApplied"
  /// The random key plan files are authenticated with (hex; never printed).
  case planKey = "plan.key"
  /// What serve's drift planner learned and spent in the current windows (JSON): a new leader
  /// goes on from it.
  case driftBudget = "drift.budget"
}

extension StateStore {
  public func meta(_ key: MetaKey) throws -> String? { try meta(key.rawValue) }
  public func setMeta(_ key: MetaKey, _ value: String?) throws { try setMeta(key.rawValue, value) }

  /// The key plan files made against this state are authenticated with: 32 random bytes,
  /// created on first use and kept in the state store.
  public func planKey() throws -> [UInt8] {
    if let hex = try meta(.planKey), let key = Self.bytes(hex: hex), key.count == 32 { return key }
    var g = SystemRandomNumberGenerator()
    let key = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &g) }
    try setMeta(.planKey, key.map { String(format: "%02x", $0) }.joined())
    return key
  }

  private static func bytes(hex: String) -> [UInt8]? {
    let u = Array(hex.utf8)
    guard u.count % 2 == 0 else { return nil }
    var out: [UInt8] = []
    out.reserveCapacity(u.count / 2)
    var i = 0
    while i < u.count {
      guard let b = UInt8(String(decoding: u[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
      out.append(b)
      i += 2
    }
    return out
  }
}
