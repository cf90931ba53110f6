import NIOCore
import Synchronization

// Connection limits of the sandbox's HTTP server (docs/sandbox.md, "Connections"): a cap on the
// connections served at once, a deadline for the first request head, and Hummingbird's idle
// timeout for the rest (a body that stops arriving, a kept-alive connection with no next request).

extension TimeAmount {
    init(_ d: Duration) {
        let (s, atto) = d.components
        self = .nanoseconds(max(0, s * 1_000_000_000 + atto / 1_000_000_000))
    }
}

/// Counts the connections being served; `enter` fails once `limit` are.
final class ConnectionGate: Sendable {
    let limit: Int
    private let open = Atomic<Int>(0)

    init(limit: Int) { self.limit = max(1, limit) }

    var count: Int { open.load(ordering: .relaxed) }

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
///   Later requests on a kept-alive connection are bounded by Hummingbird's idle timeout.
final class ConnectionGuard: ChannelInboundHandler, RemovableChannelHandler {
    // The parts are passed on untouched; only their arrival matters.
    typealias InboundIn = Any
    typealias InboundOut = Any

    private let gate: ConnectionGate
    private let headerTimeout: TimeAmount
    private var deadline: Scheduled<Void>?
    private var headSeen = false
    private var activated = false
    private var admitted = false

    init(gate: ConnectionGate, headerTimeout: TimeAmount) {
        self.gate = gate
        self.headerTimeout = headerTimeout
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
        if !headSeen {
            headSeen = true
            deadline?.cancel()
            deadline = nil
        }
        context.fireChannelRead(data)
    }

    private func activate(_ context: ChannelHandlerContext) {
        guard !activated else { return }
        activated = true
        guard gate.enter() else {
            context.close(promise: nil)
            return
        }
        admitted = true
        guard !headSeen else { return }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: headerTimeout) {
            loopBound.value.close(promise: nil)
        }
    }

    private func release() {
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
