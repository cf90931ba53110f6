import DriverKit
import EmpireModel
import Foundation
import Synchronization

/// A driver cache in memory (the state store keeps it in the real engine).
public final class MemoryCache: DriverCache {
  public let values = Mutex<[String: (value: String, expires: Date?)]>([:])
  public init() {}
  public func value(_ key: String) throws -> (value: String, expires: Date?)? { values.withLock { $0[key] } }
  public func setValue(_ key: String, _ value: String?, expires: Date?) throws {
    values.withLock { v in if let value { v[key] = (value, expires) } else { v[key] = nil } }
  }
}

/// What the engine does with one driver, for driver tests that drive it without the engine:
/// observe (recording the external ids the driver reports, as a plan's adoption does), diff,
/// and apply in the engine's order (forward actions, then deletes), recording the ids each
/// action returns. `externals` is the state store's part the driver sees.
public final class DriverLoop<D: Driver>: Sendable {
  public let driver: D
  public let externals = Mutex<[ResourceID: [String: String]]>([:])

  public struct Failure: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
  }

  public init(_ driver: D) { self.driver = driver }

  /// The states observed; throws when a target failed. `keepRecorded`: an id already recorded
  /// wins over one the observation reports.
  public func observe(_ targets: [ObserveTarget], context: DriverContext, keepRecorded: Bool = false) async throws -> [ResourceID:
    JSONValue]
  {
    var states: [ResourceID: JSONValue] = [:]
    for (id, o) in try await driver.observe(targets, context: context) {
      switch o {
      case .observed(let state, let ext):
        states[id] = state
        externals.withLock { e in
          for (k, v) in ext where !keepRecorded || e[id]?[k] == nil { e[id, default: [:]][k] = v }
        }
      case .failed(let m):
        throw Failure(message: "\(id): \(m)")
      }
    }
    return states
  }

  public func diff(_ targets: [ObserveTarget], _ states: [ResourceID: JSONValue], pricing: Pricing) -> [Action] {
    let ext = externals.withLock { $0 }
    return targets.flatMap { t in
      driver.diff(DiffInput(id: t.id, desired: t.desired, observed: states[t.id] ?? .null, external: ext[t.id] ?? [:], pricing: pricing))
    }
  }

  /// Applies `actions` (forward ones first, then deletes, as the engine does); returns the states after them.
  public func apply(_ actions: [Action], _ states: [ResourceID: JSONValue], context: DriverContext) async throws -> [ResourceID: JSONValue]
  {
    var states = states
    for a in actions.filter({ $0.operation != .delete }) + actions.filter({ $0.operation == .delete }) {
      let ext = externals.withLock { $0[a.resource] ?? [:] }
      let out = try await driver.apply(a, observed: states[a.resource] ?? .null, external: ext, context: context)
      externals.withLock { e in for (k, v) in out.external { e[a.resource, default: [:]][k] = v } }
      if let o = out.observed { states[a.resource] = o }
    }
    return states
  }

  /// Observe, diff and apply `targets`; returns the actions.
  @discardableResult
  public func converge(_ targets: [ObserveTarget], context: DriverContext, keepRecorded: Bool = false) async throws -> [Action] {
    let states = try await observe(targets, context: context, keepRecorded: keepRecorded)
    let actions = diff(targets, states, pricing: context.pricing)
    _ = try await apply(actions, states, context: context)
    return actions
  }
}
