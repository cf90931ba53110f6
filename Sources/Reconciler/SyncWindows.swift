import DriverKit
import EmpireModel
import Foundation

/// `policy.syncWindows` (as Argo CD's sync windows): inside an active `deny` window, or outside
/// every active `allow` window when some allow window applies, apply holds an action back; the
/// plan shows it Deferred with the window's ETA. Windows are judged at plan and at apply time.
public struct SyncWindows: Sendable {
  public struct Window: Sendable {
    public var kind: ReconcilerConfig.SyncWindow.WindowKind
    public var schedule: CronExpression
    /// Seconds it stays open after each firing.
    public var duration: Int
    public var timeZone: TimeZone
    public var kinds: Set<Kind>?
    public var names: Set<String>?
    public var label: String

    public init(
      kind: ReconcilerConfig.SyncWindow.WindowKind, schedule: CronExpression, duration: Int, timeZone: TimeZone,
      kinds: Set<Kind>? = nil, names: Set<String>? = nil
    ) {
      self.kind = kind
      self.schedule = schedule
      self.duration = min(max(0, duration), SyncWindows.maxDuration)
      self.timeZone = timeZone
      self.kinds = kinds
      self.names = names
      label = "\(kind.rawValue) window \"\(schedule.source)\" for \(ModelDuration.seconds(Int64(self.duration))) (\(timeZone.identifier))"
    }

    public func applies(to id: ResourceID) -> Bool {
      (kinds?.contains(id.kind) ?? true) && (names?.contains(id.name) ?? true)
    }
  }

  public let windows: [Window]
  public init(windows: [Window]) { self.windows = windows }
  public static let none = SyncWindows(windows: [])

  public init(_ config: [ReconcilerConfig.SyncWindow]) {
    windows = config.map { w in
      let seconds = Int(min(max(0, w.duration.milliseconds / 1000), Int64(Self.maxDuration)))
      return Window(
        kind: w.kind, schedule: w.schedule, duration: seconds, timeZone: TimeZone(identifier: w.timezone) ?? TimeZone(identifier: "UTC")!,
        kinds: w.applies.map(Set.init), names: w.names.map(Set.init))
    }
  }

  /// Windows longer than this are treated as this long (the search looks back this far).
  static let maxDuration = 31 * 86_400

  /// nil when `id` may be applied at `now`; otherwise why not and when it may.
  public func hold(_ id: ResourceID, at now: Date) -> (message: String, eta: Date?)? {
    let mine = windows.filter { $0.applies(to: id) }
    guard !mine.isEmpty else { return nil }
    // Deny wins.
    var denyEnds: [Date] = []
    var denyLabel: String?
    for w in mine where w.kind == .deny {
      if let start = w.lastFiring(atOrBefore: now, within: w.duration), now < start.addingTimeInterval(Double(w.duration)) {
        denyEnds.append(start.addingTimeInterval(Double(w.duration)))
        denyLabel = denyLabel ?? w.label
      }
    }
    if let end = denyEnds.max(), let denyLabel {
      return ("held by the \(denyLabel)", end)
    }
    let allows = mine.filter { $0.kind == .allow }
    guard !allows.isEmpty else { return nil }
    for w in allows {
      if let start = w.lastFiring(atOrBefore: now, within: w.duration), now < start.addingTimeInterval(Double(w.duration)) { return nil }
    }
    let next = allows.compactMap { $0.nextFiring(after: now) }.min()
    return ("outside every allow window (\(allows.map(\.label).joined(separator: "; ")))", next)
  }
}

extension SyncWindows.Window {
  private var calendar: Calendar {
    var c = Calendar(identifier: .gregorian)
    c.timeZone = timeZone
    return c
  }

  private func dayMatches(_ d: DateComponents) -> Bool {
    guard let day = d.day, let month = d.month, let weekday = d.weekday else { return false }
    let s = schedule
    guard s.months & (1 << UInt64(month)) != 0 else { return false }
    let dom = s.daysOfMonth & (1 << UInt64(day)) != 0
    let dow = s.daysOfWeek & (1 << UInt64(weekday - 1)) != 0
    // cron: when both fields are restricted, either may match.
    if s.dayOfMonthIsWildcard || s.dayOfWeekIsWildcard { return dom && dow }
    return dom || dow
  }

  /// The firing times of one day (local midnight `day`), ascending.
  private func firings(on day: Date, _ cal: Calendar) -> [Date] {
    let comps = cal.dateComponents([.day, .month, .weekday], from: day)
    guard dayMatches(comps) else { return [] }
    var out: [Date] = []
    for h in 0..<24 where schedule.hours & (1 << UInt64(h)) != 0 {
      for m in 0..<60 where schedule.minutes & (1 << UInt64(m)) != 0 {
        if let t = cal.date(bySettingHour: h, minute: m, second: 0, of: day) { out.append(t) }
      }
    }
    return out
  }

  /// The latest firing at or before `t`, no earlier than `within` seconds before it.
  func lastFiring(atOrBefore t: Date, within: Int) -> Date? {
    let cal = calendar
    let earliest = t.addingTimeInterval(-Double(within))
    var day = cal.startOfDay(for: t)
    while day >= cal.startOfDay(for: earliest) {
      if let f = firings(on: day, cal).last(where: { $0 <= t && $0 >= earliest }) { return f }
      guard let prev = cal.date(byAdding: .day, value: -1, to: day) else { return nil }
      day = prev
    }
    return nil
  }

  /// The first firing after `t`, looking at most 400 days ahead.
  func nextFiring(after t: Date) -> Date? {
    let cal = calendar
    var day = cal.startOfDay(for: t)
    for _ in 0..<400 {
      if let f = firings(on: day, cal).first(where: { $0 > t }) { return f }
      guard let next = cal.date(byAdding: .day, value: 1, to: day) else { return nil }
      day = next
    }
    return nil
  }
}
