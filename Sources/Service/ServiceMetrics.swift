import CoreMetrics
import Foundation
import Notifications
import Prometheus
import Reconciler
import Resilience
import Synchronization

/// The service's metrics (DESIGN A8), through swift-metrics with a swift-prometheus registry of
/// its own (no process-wide bootstrap, so tests can run several). `/metrics` is `render()`.
public final class ServiceMetrics: Sendable {
  public let registry = PrometheusCollectorRegistry()
  let factory: PrometheusMetricsFactory
  let duration: CoreMetrics.Timer
  let drifted: CoreMetrics.Gauge
  let lastApplied: CoreMetrics.Gauge
  let sourceErrors: CoreMetrics.Counter
  /// What `notifications(_:)` has added to each counter so far.
  private let notified = Mutex<[String: Int]>([:])

  public init() {
    var f = PrometheusMetricsFactory(registry: registry)
    f.defaultDurationHistogramBuckets = [
      .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5), .seconds(15), .seconds(30),
      .seconds(60), .seconds(300), .seconds(900),
    ]
    factory = f
    duration = CoreMetrics.Timer(label: "ytempire_reconcile_duration_seconds", dimensions: [], factory: f)
    drifted = CoreMetrics.Gauge(label: "ytempire_drifted_resources", dimensions: [], factory: f)
    lastApplied = CoreMetrics.Gauge(label: "ytempire_last_applied_timestamp_seconds", dimensions: [], factory: f)
    sourceErrors = CoreMetrics.Counter(label: "ytempire_source_errors_total", dimensions: [], factory: f)
    sourceErrors.increment(by: 0)
    drifted.record(0)
  }

  // The registry keeps one series per name and labels: asking again returns the same one.
  private func counter(_ label: String, _ dims: [(String, String)]) -> CoreMetrics.Counter {
    CoreMetrics.Counter(label: label, dimensions: dims, factory: factory)
  }

  private func gauge(_ label: String, _ dims: [(String, String)]) -> CoreMetrics.Gauge {
    CoreMetrics.Gauge(label: label, dimensions: dims, factory: factory)
  }

  public func sourceError() { sourceErrors.increment() }

  /// One reconcile: its duration, every action's result, drifted resources, the last apply.
  public func reconciled(seconds: Double, plan: Plan?, report: ApplyReport?, appliedAt: Date?) {
    duration.recordNanoseconds(Int64(max(0, min(seconds, 86_400 * 365)) * 1e9))
    if let report {
      for (service, state) in report.breakers {
        circuit(service: service, state: state == .closed ? 0 : state == .halfOpen ? 1 : 2)
      }
      for o in report.outcomes {
        counter(
          "ytempire_actions_total",
          [
            ("kind", o.action.resource.kind.rawValue), ("operation", o.action.operation.rawValue),
            ("result", o.result.rawValue),
          ]
        ).increment()
      }
    }
    if let plan { drifted.record(plan.resources.count { !$0.driftedFields.isEmpty }) }
    if let appliedAt { lastApplied.record(appliedAt.timeIntervalSince1970) }
  }

  /// Quota gauges per service (the units of each RateLimit with a quota) and breaker states
  /// (0 closed, 1 half-open, 2 open).
  public func quotas(_ q: [StatusBook.QuotaState]) {
    var used: [String: Int] = [:]
    var remaining: [String: Int] = [:]
    for s in q {
      used[s.service, default: 0] &+= s.spent
      remaining[s.service, default: 0] &+= max(0, s.units &- s.spent)
    }
    for (svc, u) in used { gauge("ytempire_quota_used_units", [("service", svc)]).record(u) }
    for (svc, r) in remaining { gauge("ytempire_quota_remaining_units", [("service", svc)]).record(r) }
  }

  /// `ytempire_notifications_total{sink,result}` from the notifier's running counts (delivered,
  /// failed, dropped), set to what it has counted so far.
  public func notifications(_ counts: [String: [Notifier.Outcome: Int]]) {
    for (sink, byOutcome) in counts {
      for outcome in Notifier.Outcome.allCases {
        let c = counter("ytempire_notifications_total", [("sink", sink), ("result", outcome.rawValue)])
        let now = byOutcome[outcome] ?? 0
        let seen = notified.withLock { $0["\(sink)/\(outcome.rawValue)"] ?? 0 }
        if now > seen {
          c.increment(by: Int64(now - seen))
          notified.withLock { $0["\(sink)/\(outcome.rawValue)"] = now }
        } else if seen == 0 {
          c.increment(by: 0)
        }
      }
    }
  }

  public func circuit(service: String, state: Int) {
    gauge("ytempire_circuit_state", [("service", service)]).record(state)
  }

  /// Prometheus text format.
  public func render() -> [UInt8] { registry.emitToBuffer() }
}
