import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A scriptable HTTP/1.1 server on 127.0.0.1 (ephemeral port) for client tests: each route plays
/// a list of actions in order (the last one repeats), so a test can script "two 503s then a 200",
/// "429 with Retry-After", a slow or oversized body, or a connection reset mid-response.
public final class HTTPTestServer: Sendable {
  public indirect enum Action: Sendable {
    case respond(status: Int, headers: [(String, String)] = [], body: [UInt8] = [])
    /// Waits before sending anything.
    case delayed(Duration, Action)
    /// Sends the head (with the full Content-Length), then `chunks` pieces of `chunkSize` bytes, `interval` apart.
    case slowBody(status: Int, chunks: Int, chunkSize: Int, interval: Duration)
    /// Sends a head announcing `announced` bytes, `sent` bytes of body, then resets the connection.
    case reset(announced: Int, sent: Int)
    /// Closes the connection without answering.
    case closeWithoutResponse
    /// Answers with `bytes` bytes, chunked (no Content-Length) when `chunked`.
    case oversized(bytes: Int, chunked: Bool)
    /// Answers `status` with an OAuth-style error whose description quotes the request body,
    /// as a server that echoes what it was sent: `{"error":"invalid_request","error_description":"…"}`.
    case echoBody(status: Int)

    public static func text(_ status: Int, _ body: String, headers: [(String, String)] = []) -> Action {
      .respond(status: status, headers: headers, body: Array(body.utf8))
    }
  }

  public struct RecordedRequest: Sendable {
    public var method: String
    public var uri: String
    public var headers: [(String, String)]
    public var body: [UInt8]
    public func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
  }

  private struct State {
    var routes: [String: [Action]] = [:]
    var hits: [String: Int] = [:]
    var requests: [String: [RecordedRequest]] = [:]
    var connections = 0
    var recordRequests = true
  }
  private let state = Mutex(State())
  private let group: MultiThreadedEventLoopGroup
  private let channel: any Channel
  public let port: Int

  public var baseURL: String { "http://127.0.0.1:\(port)" }

  /// Starts a server. `threads` event loops (1 is plenty for tests; more for benchmarks).
  public static func start(threads: Int = 1, recordRequests: Bool = true) async throws -> HTTPTestServer {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    let box = ServerBox()
    let bootstrap = ServerBootstrap(group: group)
      .serverChannelOption(.backlog, value: 512)
      .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
      .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
      .childChannelInitializer { channel in
        box.server?.connectionOpened()
        return channel.eventLoop.makeCompletedFuture {
          try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
          try channel.pipeline.syncOperations.addHandler(RouteHandler(box: box))
        }
      }
    let channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
    let server = HTTPTestServer(group: group, channel: channel, port: channel.localAddress!.port!)
    server.state.withLock { $0.recordRequests = recordRequests }
    box.set(server)
    return server
  }

  private init(group: MultiThreadedEventLoopGroup, channel: any Channel, port: Int) {
    self.group = group
    self.channel = channel
    self.port = port
  }

  public func shutdown() async throws {
    try await channel.close().get()
    try await group.shutdownGracefully()
  }

  /// Scripts a route (the path, without query).
  public func route(_ path: String, _ actions: [Action]) { state.withLock { $0.routes[path] = actions } }
  public func route(_ path: String, _ action: Action) { route(path, [action]) }

  public func hits(_ path: String) -> Int { state.withLock { $0.hits[path] ?? 0 } }
  public func requests(_ path: String) -> [RecordedRequest] { state.withLock { $0.requests[path] ?? [] } }
  /// TCP connections accepted so far.
  public var connections: Int { state.withLock { $0.connections } }

  fileprivate func connectionOpened() { state.withLock { $0.connections += 1 } }

  fileprivate func next(for request: RecordedRequest) -> Action {
    let path = String(request.uri.prefix { $0 != "?" })
    return state.withLock { s in
      let n = s.hits[path, default: 0]
      s.hits[path] = n + 1
      if s.recordRequests { s.requests[path, default: []].append(request) }
      guard let actions = s.routes[path], !actions.isEmpty else { return .text(404, "no route \(path)") }
      return actions[min(n, actions.count - 1)]
    }
  }
}

/// Lets the channel initializer reach the server object created after bind.
private final class ServerBox: Sendable {
  private let ref = Mutex<HTTPTestServer?>(nil)
  var server: HTTPTestServer? { ref.withLock { $0 } }
  func set(_ s: HTTPTestServer) { ref.withLock { $0 = s } }
}

private final class RouteHandler: ChannelInboundHandler {
  typealias InboundIn = HTTPServerRequestPart
  typealias OutboundOut = HTTPServerResponsePart
  private let box: ServerBox
  private var head: HTTPRequestHead?
  private var body: [UInt8] = []
  init(box: ServerBox) { self.box = box }

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    switch unwrapInboundIn(data) {
    case .head(let h):
      head = h
      body = []
    case .body(var b): body += b.readBytes(length: b.readableBytes) ?? []
    case .end:
      guard let head, let server = box.server else { return }
      let req = HTTPTestServer.RecordedRequest(
        method: head.method.rawValue, uri: head.uri,
        headers: head.headers.map { ($0.name, $0.value) }, body: body)
      var action = server.next(for: req)
      if case .echoBody(let status) = action {
        let answer = ["error": "invalid_request", "error_description": "could not use " + String(decoding: req.body, as: UTF8.self)]
        let json = (try? JSONSerialization.data(withJSONObject: answer)).map { Array($0) } ?? []
        action = .respond(status: status, headers: [("Content-Type", "application/json")], body: json)
      }
      perform(action, keepAlive: head.isKeepAlive, context: context)
    }
  }

  private func perform(_ action: HTTPTestServer.Action, keepAlive: Bool, context: ChannelHandlerContext) {
    let loop = context.eventLoop.assumeIsolated()
    switch action {
    case .respond(let status, let headers, let body):
      var h = HTTPHeaders(headers)
      h.replaceOrAdd(name: "Content-Length", value: String(body.count))
      if !keepAlive { h.replaceOrAdd(name: "Connection", value: "close") }
      context.write(
        wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: h))), promise: nil)
      if !body.isEmpty { context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil) }
      let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
      if !keepAlive { done.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
    case .delayed(let d, let inner):
      loop.scheduleTask(in: .nanoseconds(Int64(d.components.seconds) * 1_000_000_000 + d.components.attoseconds / 1_000_000_000)) {
        self.perform(inner, keepAlive: keepAlive, context: context)
      }
    case .slowBody(let status, let chunks, let size, let interval):
      var h = HTTPHeaders()
      h.add(name: "Content-Length", value: String(chunks * size))
      context.writeAndFlush(
        wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .init(statusCode: status), headers: h))), promise: nil)
      let step = TimeAmount.nanoseconds(
        Int64(interval.components.seconds) * 1_000_000_000 + interval.components.attoseconds / 1_000_000_000)
      func send(_ i: Int) {
        guard context.channel.isActive else { return }
        if i == chunks {
          context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
          return
        }
        context.writeAndFlush(
          wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(repeating: UInt8(ascii: "x"), count: size)))), promise: nil)
        loop.scheduleTask(in: step) { send(i + 1) }
      }
      loop.scheduleTask(in: step) { send(0) }
    case .reset(let announced, let sent):
      var h = HTTPHeaders()
      h.add(name: "Content-Length", value: String(announced))
      context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: h))), promise: nil)
      context.writeAndFlush(
        wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(repeating: UInt8(ascii: "r"), count: sent))))
      )
      .assumeIsolated().whenComplete { _ in
        // SO_LINGER 0: close() sends an RST instead of a FIN.
        _ = (context.channel as? any SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0))
        context.close(promise: nil)
      }
    case .closeWithoutResponse:
      _ = (context.channel as? any SocketOptionProvider)?.setSoLinger(linger(l_onoff: 1, l_linger: 0))
      context.close(promise: nil)
    case .echoBody(let status):  // made concrete in channelRead
      perform(.text(status, ""), keepAlive: keepAlive, context: context)
    case .oversized(let bytes, let chunked):
      var h = HTTPHeaders()
      if chunked { h.add(name: "Transfer-Encoding", value: "chunked") } else { h.add(name: "Content-Length", value: String(bytes)) }
      context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: h))), promise: nil)
      var left = bytes
      while left > 0 {
        let n = min(left, 64 * 1024)
        context.write(
          wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(repeating: UInt8(ascii: "o"), count: n)))), promise: nil)
        left -= n
      }
      context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
  }

  func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
