import CurlHTTP
import EmpireModel
import Foundation
import Synchronization

/// A driver over an in-memory world, for the engine's own tests: each resource is one object
/// whose content is `render(resource)`. Observing costs `objects.list` per 10 resources and
/// each action one `objects.put`/`objects.delete`, priced by the RateLimit of `service`.
/// Failures can be scripted per resource.
public final class InMemoryDriver: Driver {
  public let name: String
  public let kinds: Set<Kind>
  public let service: String
  private let render: @Sendable (Resource) -> JSONValue
  private let state = Mutex<State>(State())

  struct State {
    var objects: [ResourceID: JSONValue] = [:]
    var failApply: [ResourceID: String] = [:]
    var failObserve: [ResourceID: String] = [:]
    var holds: [ResourceID: String] = [:]
    var applied: [String] = []
    var observed: [ResourceID] = []
  }

  public init(
    name: String = "memory", kinds: Set<Kind>, service: String = "memory",
    render: @escaping @Sendable (Resource) -> JSONValue = { r in
      .object(["name": .string(r.name), "labels": .object(r.metadata.labels.mapValues(JSONValue.string))])
    }
  ) {
    self.name = name
    self.kinds = kinds
    self.service = service
    self.render = render
  }

  // MARK: test controls

  /// The world as it is (edit it to simulate drift).
  public var objects: [ResourceID: JSONValue] {
    get { state.withLock { $0.objects } }
    set { state.withLock { $0.objects = newValue } }
  }
  public func setObject(_ id: ResourceID, _ v: JSONValue?) { state.withLock { $0.objects[id] = v } }
  public func failApply(_ id: ResourceID, _ message: String?) { state.withLock { $0.failApply[id] = message } }
  public func failObserve(_ id: ResourceID, _ message: String?) { state.withLock { $0.failObserve[id] = message } }
  /// What the object of `id` holds (`2 videos`): its delete says so (`Action.holds`).
  public func holds(_ id: ResourceID, _ what: String?) { state.withLock { $0.holds[id] = what } }
  /// Action ids applied, in order.
  public var applied: [String] { state.withLock { $0.applied } }
  /// Resources observed, in order.
  public var observedLog: [ResourceID] { state.withLock { $0.observed } }

  // MARK: Driver

  public func desired(_ resource: Resource, in index: DesiredIndex) -> JSONValue { render(resource) }

  public func observationCalls(_ targets: [ObserveTarget], pricing: Pricing) -> [PlannedCall] {
    stride(from: 0, to: targets.count, by: 10).map { _ in pricing.call(service, "objects.list") }
  }

  public func observe(_ targets: [ObserveTarget], context: DriverContext) async throws -> [ResourceID: ObservationOutcome] {
    for c in observationCalls(targets, pricing: context.pricing) { try await charge(c, context) }
    return state.withLock { s in
      var out: [ResourceID: ObservationOutcome] = [:]
      for t in targets {
        s.observed.append(t.id)
        // Found by its recorded id: a renamed resource's object keeps its old name until an action renames it.
        let object = s.objects[t.id] ?? Self.recorded(t.external, kind: t.id.kind).flatMap { s.objects[$0] }
        if let f = s.failObserve[t.id] { out[t.id] = .failed(f) } else { out[t.id] = .observed(state: object ?? .null, external: [:]) }
      }
      return out
    }
  }

  public func diff(_ input: DiffInput) -> [Action] {
    switch (input.desired, input.observed) {
    case (nil, .null): return []
    case (nil, let o):
      var delete = Action(
        driver: name, resource: input.id, operation: .delete, key: "object", summary: "object",
        changes: JSONDiff.changes(o, nil), calls: [input.pricing.call(service, "objects.delete")])
      delete.holds = state.withLock { $0.holds[input.id] }
      return [delete]
    case (let d?, .null):
      return [
        Action(
          driver: name, resource: input.id, operation: .create, key: "object", summary: "object",
          changes: JSONDiff.changes(nil, d), calls: [input.pricing.call(service, "objects.put")], payload: d)
      ]
    case (let d?, let o):
      let ch = JSONDiff.changes(o, d)
      return ch.isEmpty
        ? []
        : [
          Action(
            driver: name, resource: input.id, operation: .update, key: "object", summary: "object",
            changes: ch, calls: [input.pricing.call(service, "objects.put")], payload: d)
        ]
    }
  }

  public func apply(_ action: Action, observed: JSONValue, external: [String: String], context: DriverContext) async throws -> ApplyOutcome
  {
    for c in action.calls { try await charge(c, context) }
    return try state.withLock { s in
      if let f = s.failApply[action.resource] { throw InMemoryDriverError(message: f) }
      s.applied.append(action.id)
      if action.operation == .delete {
        s.objects[action.resource] = nil
        return ApplyOutcome(external: ["object": nil], observed: .null)
      }
      // The object recorded under another name (a rename) is this one: it moves, in place.
      if let recorded = Self.recorded(external, kind: action.resource.kind), recorded != action.resource { s.objects[recorded] = nil }
      s.objects[action.resource] = action.payload
      return ApplyOutcome(external: ["object": "mem-\(action.resource.name)"], observed: action.payload)
    }
  }

  /// The object an `external["object"]` id (`mem-<name>`) names.
  static func recorded(_ external: [String: String], kind: Kind) -> ResourceID? {
    guard let id = external["object"], id.hasPrefix("mem-") else { return nil }
    return ResourceID(kind, String(id.dropFirst(4)))
  }

  /// Goes through the engine's client so that the quota ledger is charged as for a real call.
  private func charge(_ call: PlannedCall, _ context: DriverContext) async throws {
    guard call.quota != nil else { return }
    _ = try await context.client(service).send(InMemoryDriver.request, call: call)
  }

  static let request = HTTPRequestStub.request
}

public struct InMemoryDriverError: Error, Sendable, CustomStringConvertible {
  public var message: String
  public var description: String { message }
}

enum HTTPRequestStub {
  static let request = HTTPRequest(method: "POST", url: "memory://objects")
}

/// A transport that answers every request with 200 `{}` without a network (pairs with InMemoryDriver).
public struct NullTransport: HTTPTransport {
  public init() {}
  public func execute(_ request: HTTPRequest) async throws -> HTTPResponse { HTTPResponse(status: 200, body: Array("{}".utf8)) }
}
