import Hummingbird
import Logging
import ServerGuard
import ServiceLifecycle

/// `serve.listen` as a ServiceLifecycle service: the routes behind the connection limits the
/// sandbox uses too (ServerGuard), and a start signal the reconcile loop waits for, so nothing
/// is reconciled before the address is bound, and a taken address ends `serve` at once with a
/// message naming it.
public struct ServeListener: ServiceLifecycle.Service {
  /// Webhook bodies are at most 1 MiB and every other route is a GET: a client gets 10 s for
  /// its request head, 30 s for a body, and a kept-alive connection is closed after 60 s idle.
  /// 256 connections at once are far more than Prometheus, a browser and a forge need.
  public static let limits = ConnectionLimits(
    headerTimeout: .seconds(10), bodyTimeout: .seconds(30), idleTimeout: .seconds(60),
    maxConnections: 256)

  /// Succeeds with the port once the listener accepts connections; fails with a
  /// `ListenFailure` when it cannot bind.
  public let started: ListenerStart
  public let guarded: GuardedHTTP1
  let address: String
  let app: Application<RouterResponder<BasicRequestContext>>

  public init(
    router: Router<BasicRequestContext>, host: String, port: Int, limits: ConnectionLimits = Self.limits, logger: Logger,
    onListening: @escaping @Sendable (_ address: String) -> Void
  ) {
    let started = ListenerStart()
    let guarded = GuardedHTTP1(limits)
    self.started = started
    self.guarded = guarded
    address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    let display = host.contains(":") ? "[\(host)]" : host
    app = Application(
      router: router, server: guarded.server,
      configuration: .init(address: .hostname(host, port: port), serverName: nil),
      onServerRunning: { channel in
        let bound = channel.localAddress?.port ?? port
        onListening("\(display):\(bound)")
        started.succeed(bound)
      },
      logger: logger)
  }

  public func run() async throws {
    do {
      try await app.run()
    } catch {
      guard !started.isFinished else { throw error }
      let failure = ListenFailure(address: address, reason: ListenFailure.reason(error))
      started.fail(failure)
      throw failure
    }
    started.fail(ListenFailure(address: address, reason: "the listener stopped before it started"))
  }
}
