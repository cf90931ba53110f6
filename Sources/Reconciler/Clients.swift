import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import Resilience
import Synchronization

/// A call as it was made (for status `lastActions` and metrics).
public struct CallRecord: Sendable, Equatable {
  public var call: PlannedCall
  public var status: Int?
  public var ok: Bool
  /// The HTTP method (the audit log keeps only calls that may change something).
  public var method: String
  /// False for a call our quota ledger refused before the wire: nothing was sent.
  public var sent: Bool
  public init(call: PlannedCall, status: Int?, ok: Bool, method: String, sent: Bool) {
    self.call = call
    self.status = status
    self.ok = ok
    self.method = method
    self.sent = sent
  }
}

/// One resilience registry per run, built from the RateLimit resources: a `ResilientHTTP` per
/// RateLimit (its limits, retries and quota ledger), breakers per service, the global limiter,
/// all over one transport. Drivers reach it through `ServiceClient`s that route each call to
/// the RateLimit that pays for it.
public final class ServiceRegistry: Sendable {
  public let transport: any HTTPTransport
  public let breakers: BreakerRegistry
  public let global: GlobalLimiter?
  public let clock: any ResilienceClock
  /// RateLimit name → its client; services without a RateLimit get defaults.
  private let byRateLimit: [String: ResilientHTTP]
  private let defaults: Mutex<[String: ResilientHTTP]>
  /// Quota ledgers by RateLimit name.
  public let ledgers: [String: QuotaLedger]
  private let pricing: Pricing
  private let random: RandomSource
  /// A retry that would wait longer than this (an API's quota answer, retried at the reset)
  /// gives up: the engine defers the action rather than sleeping through the reset. Cloudflare's
  /// five-minute block still fits.
  static let maxRetryWait: Duration = .seconds(330)

  /// `deadlines.call` of every client (nil: none).
  private let callTimeout: Duration?

  public init(
    desired: DesiredIndex, transport: any HTTPTransport, windows: (any QuotaWindowStore)?,
    clock: any ResilienceClock = SystemClock(), random: @escaping RandomSource = { Double.random(in: 0..<1) },
    callTimeout: Duration? = nil
  ) throws {
    self.transport = transport
    self.callTimeout = callTimeout
    self.clock = clock
    self.random = random
    pricing = Pricing(desired)
    let limits = desired.all(.rateLimit).compactMap { r in r.rateLimit.map { (r.name, $0) } }
    let globalSpec = limits.first { $0.1.service == "global" }?.1
    global = globalSpec.map { GlobalLimiter($0.global, clock: clock) }
    var specsByService: [String: RateLimitSpec] = [:]
    for (_, s) in limits.sorted(by: { $0.0 < $1.0 }) where specsByService[s.service] == nil { specsByService[s.service] = s }
    let bySvc = specsByService
    breakers = BreakerRegistry(clock: clock) { service in
      CircuitBreaker.Settings(bySvc[service]?.circuitBreaker, fallback: globalSpec?.circuitBreaker)
    }
    var ledgers: [String: QuotaLedger] = [:]
    var clients: [String: ResilientHTTP] = [:]
    let channels = desired.all(.channel)
    for (name, spec) in limits where spec.service != "global" {
      var ledger: QuotaLedger?
      if var q = spec.quota {
        // Predictive spacing paces the runtime's steady use over the day; the reconciler
        // instead plans its few calls to fit the quota (and defers what does not), so
        // it does not wait out the spacing between them.
        q.predictive = false
        // The active channels this quota governs get their reservations.
        let governed = channels.filter { $0.channel?.active == true && $0.channel?.rateLimit?.name == name }.map(\.name)
        ledger = try QuotaLedger(service: name, quota: q, channels: governed, store: windows, clock: clock)
        ledgers[name] = ledger
      }
      let l = ServiceLimits(spec: spec, service: spec.service, global: globalSpec, ledger: ledger, clock: clock)
      clients[name] = ResilientHTTP(
        http: transport, limits: l, breakers: breakers, global: global, clock: clock, random: random,
        maxRetryWait: Self.maxRetryWait, callTimeout: callTimeout)
    }
    byRateLimit = clients
    self.ledgers = ledgers
    defaults = Mutex([:])
  }

  func http(for call: PlannedCall) -> ResilientHTTP {
    if let q = call.quota, let c = byRateLimit[q] { return c }
    if let rl = pricing.rateLimit(for: call.service), let c = byRateLimit[rl] { return c }
    return defaults.withLock { d in
      if let c = d[call.service] { return c }
      let c = ResilientHTTP(
        http: transport, limits: ServiceLimits(spec: nil, service: call.service, clock: clock),
        breakers: breakers, global: global, clock: clock, random: random, maxRetryWait: Self.maxRetryWait,
        callTimeout: callTimeout)
      d[call.service] = c
      return c
    }
  }

  /// A client that routes each call to the RateLimit paying for it (by the call's quota, else
  /// its service) and records every call it makes into `recorder`.
  public func client(recorder: CallRecorder? = nil) -> any ServiceClient {
    RoutedClient(registry: self, recorder: recorder)
  }

  struct RoutedClient: ServiceClient {
    let registry: ServiceRegistry
    let recorder: CallRecorder?
    func send(_ request: HTTPRequest, call: PlannedCall) async throws -> HTTPResponse {
      do {
        let r = try await ResilientServiceClient(registry.http(for: call)).send(request, call: call)
        recorder?.add(CallRecord(call: call, status: r.status, ok: true, method: request.method, sent: true))
        return r
      } catch let e as QuotaExhausted {
        // Refused before the wire: nothing was spent.
        var c = call
        c.units = 0
        recorder?.add(CallRecord(call: c, status: nil, ok: false, method: request.method, sent: false))
        throw e
      } catch {
        let last = (error as? RetriesExhausted)?.last ?? (error as? RetryAfterDeferral)?.last
        recorder?.add(CallRecord(call: call, status: last?.status, ok: false, method: request.method, sent: true))
        throw error
      }
    }
  }
}

/// Collects the calls made on behalf of one action or observation.
public final class CallRecorder: Sendable {
  private let calls = Mutex<[CallRecord]>([])
  public init() {}
  public func add(_ c: CallRecord) { calls.withLock { $0.append(c) } }
  public var records: [CallRecord] { calls.withLock { $0 } }
  public var units: Int { records.reduce(0) { $0 &+ $1.call.units } }
}

/// A counter shared by concurrent tasks.
final class Counter: Sendable {
  private let n = Mutex(0)
  var value: Int { n.withLock { $0 } }
  func increment() -> Int {
    n.withLock {
      $0 += 1
      return $0
    }
  }
}

extension Duration {
  var timeInterval: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
