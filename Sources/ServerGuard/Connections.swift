import NIOCore
import NIOHTTPTypes
import Synchronization

// Connection limits of an HTTP/1 server built on Hummingbird: the sandbox's emulators and
// `serve`'s listener (docs/sandbox.md "Connections", docs/serve.md "Endpoints"). A cap on the
// connections served at once, a deadline for each request head (the first one from the accept)
// and for each request body, and Hummingbird's idle timeout for the rest (a kept-alive
// connection with no next request, a body that stops arriving).

extension TimeAmount {
  public init(_ d: Duration) {
    let (s, atto) = d.components
    self = .nanoseconds(max(0, s * 1_000_000_000 + atto / 1_000_000_000))
  }
}

/// Counts the connections being served; `enter` fails once `limit` are. Also counts the
/// connections each limit closed, so a test (or a metric) can tell a limit's close from any other.
public final class ConnectionGate: Sendable {
  public let limit: Int
  private let open = Atomic<Int>(0)
  private let overCap = Atomic<Int>(0)
  private let headerTimeouts = Atomic<Int>(0)
  private let bodyTimeouts = Atomic<Int>(0)

  public init(limit: Int) { self.limit = max(1, limit) }

  public var count: Int { open.load(ordering: .relaxed) }

  /// Connections closed so far because the cap was reached, their head or their body was late.
  public var closed: (overCap: Int, headerTimeout: Int, bodyTimeout: Int) {
    (overCap.load(ordering: .relaxed), headerTimeouts.load(ordering: .relaxed), bodyTimeouts.load(ordering: .relaxed))
  }

  func noteOverCap() { overCap.add(1, ordering: .relaxed) }
  func noteTimeout(header: Bool) {
    if header { headerTimeouts.add(1, ordering: .relaxed) } else { bodyTimeouts.add(1, ordering: .relaxed) }
  }

  func enter() -> Bool {
    if open.wrappingAdd(1, ordering: .relaxed).newValue <= limit { return true }
    open.wrappingSubtract(1, ordering: .relaxed)
    return false
  }

  func leave() { open.wrappingSubtract(1, ordering: .relaxed) }
}

/// One per connection, after Hummingbird's HTTP/1 decoder (it sees request parts, the first of
/// which is always a complete head):
/// - over the gate's limit, the connection is closed as soon as it is active, before anything
///   is read from it, so a flood of connections costs no more than `limit` of them;
/// - a connection whose first request head has not arrived within `headerTimeout` of its
///   accept is closed: clients that send nothing, or their headers a byte at a time (slowloris).
///   Later requests on a kept-alive connection are bounded by Hummingbird's idle timeout;
/// - a request whose body has not ended within `bodyTimeout` of its head is closed: a body that
///   trickles in (each byte just within the idle timeout), or a large announced length never sent.
///   The time the server then takes to answer is not counted.
final class ConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
  typealias InboundIn = HTTPRequestPart
  typealias InboundOut = HTTPRequestPart

  private let gate: ConnectionGate
  private let headerTimeout: TimeAmount
  private let bodyTimeout: TimeAmount
  private var deadline: Scheduled<Void>?
  private var headSeen = false
  private var activated = false
  private var admitted = false
  private var released = false

  init(gate: ConnectionGate, headerTimeout: TimeAmount, bodyTimeout: TimeAmount) {
    self.gate = gate
    self.headerTimeout = headerTimeout
    self.bodyTimeout = bodyTimeout
  }

  func handlerAdded(context: ChannelHandlerContext) {
    // Accepted channels usually become active after the pipeline is set up; if this one
    // already is, start on the next turn of the loop, once Hummingbird has added the rest.
    if context.channel.isActive {
      let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
      context.eventLoop.assumeIsolated().execute {
        let (handler, context) = loopBound.value
        handler.activate(context)
      }
    }
  }

  func handlerRemoved(context: ChannelHandlerContext) { release() }

  func channelActive(context: ChannelHandlerContext) {
    activate(context)
    context.fireChannelActive()
  }

  func channelInactive(context: ChannelHandlerContext) {
    release()
    context.fireChannelInactive()
  }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head:
      headSeen = true
      schedule(context, in: bodyTimeout, header: false)
    case .body:
      break
    case .end:
      deadline?.cancel()
      deadline = nil
    }
    context.fireChannelRead(data)
  }

  private func schedule(_ context: ChannelHandlerContext, in amount: TimeAmount, header: Bool) {
    deadline?.cancel()
    let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
    let gate = self.gate
    deadline = context.eventLoop.assumeIsolated().scheduleTask(in: amount) {
      gate.noteTimeout(header: header)
      loopBound.value.close(promise: nil)
    }
  }

  private func activate(_ context: ChannelHandlerContext) {
    // A deferred activation that comes after the channel went away must not take a place
    // in the gate that nothing would give back.
    guard !activated, !released, context.channel.isActive else { return }
    activated = true
    guard gate.enter() else {
      gate.noteOverCap()
      context.close(promise: nil)
      return
    }
    admitted = true
    guard !headSeen else { return }
    schedule(context, in: headerTimeout, header: true)
  }

  private func release() {
    released = true
    deadline?.cancel()
    deadline = nil
    if admitted {
      admitted = false
      gate.leave()
    }
  }
}

@available(*, unavailable)
extension ConnectionGuard: Sendable {}
