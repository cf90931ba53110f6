import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore
import Synchronization

/// The limits of an HTTP/1 listener (see `ConnectionGuard`).
public struct ConnectionLimits: Sendable, Equatable {
  /// A new connection whose first request head is not complete by then is closed.
  public var headerTimeout: Duration
  /// A request whose body has not ended this long after its head is closed.
  public var bodyTimeout: Duration
  /// A connection that sends nothing for this long while a request body is read, or while it
  /// waits for the next request on a kept-alive connection, is closed. Not counted while the
  /// server works on a request.
  public var idleTimeout: Duration
  /// Connections served at once; one more is closed at once, before anything is read from it.
  public var maxConnections: Int

  public init(
    headerTimeout: Duration = .seconds(10), bodyTimeout: Duration = .seconds(30), idleTimeout: Duration = .seconds(30),
    maxConnections: Int = 512
  ) {
    self.headerTimeout = headerTimeout
    self.bodyTimeout = bodyTimeout
    self.idleTimeout = idleTimeout
    self.maxConnections = maxConnections
  }
}

/// An HTTP/1 server configuration guarded by `limits`: Hummingbird's idle timeout plus a
/// `ConnectionGuard` on every connection, all sharing one gate.
public struct GuardedHTTP1: Sendable {
  public let limits: ConnectionLimits
  public let gate: ConnectionGate

  public init(_ limits: ConnectionLimits) {
    self.limits = limits
    gate = ConnectionGate(limit: limits.maxConnections)
  }

  /// Connections being served now.
  public var openConnections: Int { gate.count }

  /// `Application(…, server: guarded.server, …)`.
  public var server: HTTPServerBuilder {
    let gate = gate
    let header = TimeAmount(limits.headerTimeout)
    let body = TimeAmount(limits.bodyTimeout)
    return .http1(
      configuration: .init(
        additionalChannelHandlers: [ConnectionGuard(gate: gate, headerTimeout: header, bodyTimeout: body)],
        idleTimeout: TimeAmount(limits.idleTimeout)))
  }
}

/// Why a listener did not start: names the address (`cannot listen on 127.0.0.1:9400: Address
/// already in use`).
public struct ListenFailure: Error, CustomStringConvertible, Sendable {
  public var address: String
  public var reason: String
  public init(address: String, reason: String) {
    self.address = address
    self.reason = reason
  }
  public var description: String { "cannot listen on \(address): \(reason)" }

  /// The reason of a bind error without NIO's call syntax (`bind(descriptor:ptr:bytes:): … (errno: 98)`).
  public static func reason(_ error: any Error) -> String {
    if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
    // Wrapped on the way: "bind(descriptor:ptr:bytes:): Address already in use (errno: 98)".
    let text = "\(error)"
    if let open = text.range(of: "): "), let errnoMark = text.range(of: " (errno: ", options: .backwards),
      open.upperBound < errnoMark.lowerBound
    {
      return String(text[open.upperBound..<errnoMark.lowerBound])
    }
    return text
  }
}

/// One-shot signal from a listener's `onServerRunning` (or its failure) to whoever waits for
/// it: the port once it accepts connections, or why it never will.
public final class ListenerStart: Sendable {
  private let state = Mutex<(result: Result<Int, ListenFailure>?, waiters: [CheckedContinuation<Int, any Error>])>((nil, []))

  public init() {}

  /// Whether it succeeded or failed already.
  public var isFinished: Bool { state.withLock { $0.result != nil } }

  public func succeed(_ port: Int) { finish(.success(port)) }
  public func fail(_ e: ListenFailure) { finish(.failure(e)) }

  private func finish(_ r: Result<Int, ListenFailure>) {
    let waiters = state.withLock { s -> [CheckedContinuation<Int, any Error>] in
      guard s.result == nil else { return [] }
      s.result = r
      defer { s.waiters = [] }
      return s.waiters
    }
    for w in waiters { w.resume(with: r.mapError { $0 as any Error }) }
  }

  /// The port, once listening; throws the `ListenFailure` otherwise.
  public func wait() async throws -> Int {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<Int, any Error>) in
      let ready = state.withLock { s -> Result<Int, ListenFailure>? in
        if let r = s.result { return r }
        s.waiters.append(c)
        return nil
      }
      if let ready { c.resume(with: ready.mapError { $0 as any Error }) }
    }
  }
}
