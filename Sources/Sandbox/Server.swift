import EmpireModel
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServerGuard
import ServiceLifecycle
import Synchronization

public struct SandboxOptions: Sendable {
  /// Address to listen on; port 0 picks a free port (tests).
  public var host = "127.0.0.1"
  public var port = 0
  /// Desired-state directory to seed from (`--seed-from`).
  public var seedFrom: String?
  /// SQLite file keeping the state across restarts (`--state`); nil keeps it in memory.
  public var statePath: String?
  /// Fault rules in the `--faults` syntax.
  public var faults: String?
  /// Seed of the fault engine's random streams.
  public var faultSeed: UInt64 = 0
  public var quota = QuotaConfig()
  public var cloudflareLimits = CloudflareLimits()
  public var credentials = SandboxCredentials()
  public var clock = SandboxClock()
  public var logLevel: Logger.Level = .warning
  /// Largest request body accepted.
  public var maxBodyBytes = 4 << 20
  /// A new connection whose first request head is not complete by then is closed (silent
  /// clients, slowloris).
  public var headerTimeout: Duration = .seconds(10)
  /// A connection that sends nothing for this long while a request body is being read, or while
  /// it waits for the next request on a kept-alive connection, is closed. Not counted while the
  /// sandbox works on a request (injected latency included).
  public var idleTimeout: Duration = .seconds(30)
  /// A request whose body has not ended this long after its head is closed (a trickle).
  public var bodyTimeout: Duration = .seconds(60)
  /// Connections served at once; one more is closed at once, before anything is read from it.
  public var maxConnections = 512
  /// With `statePath`: how long a change waits for others before the state file is written
  /// (the saves are coalesced off the request path; `stop()` writes what is left).
  public var saveInterval: Duration = .milliseconds(200)
  /// Stop gracefully on SIGINT/SIGTERM (the CLI); tests call `stop()`.
  public var stopOnSignals = false

  public init() {}
}

public struct SandboxError: Error, CustomStringConvertible {
  public var description: String
  public init(description: String) { self.description = description }
}

/// A running sandbox: every emulator on one loopback listener (DESIGN A9).
public final class SandboxServer: Sendable {
  public let host: String
  public let port: Int
  public let credentials: SandboxCredentials
  public let seed: SeedReport
  public let clock: SandboxClock
  let core: SandboxCore
  private let task: Task<Void, any Error>
  private let group: ServiceGroup
  let guarded: GuardedHTTP1

  public var baseURL: String { "http://\(host):\(port)" }
  public var youtubeURL: String { baseURL + "/youtube/v3" }
  public var tokenURL: String { baseURL + "/token" }
  /// n8n's base URL; clients append `/api/v1` as with a real n8n (`integrations.n8n.endpoint`).
  public var n8nURL: String { baseURL }
  public var cloudflareURL: String { baseURL + "/client/v4" }
  /// Vault's address; clients append `/v1/…` as with a real Vault.
  public var vaultURL: String { baseURL }
  public var adminURL: String { baseURL + "/_sandbox" }

  private init(
    host: String, port: Int, core: SandboxCore, credentials: SandboxCredentials, seed: SeedReport,
    group: ServiceGroup, guarded: GuardedHTTP1, task: Task<Void, any Error>
  ) {
    self.group = group
    self.guarded = guarded
    self.host = host
    self.port = port
    self.core = core
    self.credentials = credentials
    self.seed = seed
    self.clock = core.clock
    self.task = task
  }

  /// The world a sandbox starts with: restored from the state file, else made from the
  /// options (credentials, quotas) and seeded from `seedFrom`.
  static func initialWorld(_ options: SandboxOptions) throws -> (World, SeedReport, StateStore?) {
    var store: StateStore?
    var world: World?
    if let path = options.statePath {
      do {
        store = try StateStore(path: path)
        world = try store?.load()
      } catch {
        throw SandboxError(description: "--state \(path): \(error)")
      }
    }
    var report = SeedReport()
    let restored = world != nil
    var w = world ?? World()
    if !restored {
      w.credentials = options.credentials
      w.youtube.quota = options.quota
      w.cloudflare.limits = options.cloudflareLimits
    }
    if let dir = options.seedFrom {
      let resources = try Seeder.load(dir)
      if restored {
        // The state file wins; report the seeded tokens that it still holds.
        for r in resources {
          if let c = r.channel, w.youtube.refreshTokens[Seeder.refreshToken(for: r.name)] != nil {
            report.channels.append(
              SeededChannel(
                name: r.name, channelId: c.youtube.channelId, credentials: c.youtube.credentials,
                refreshToken: Seeder.refreshToken(for: r.name)))
          }
        }
      } else {
        report = Seeder.seed(resources, into: &w, now: options.clock.now)
      }
    }
    return (w, report, store)
  }

  /// Loads or seeds the state, binds the listener and returns once it accepts connections.
  public static func start(_ options: SandboxOptions = SandboxOptions()) async throws -> SandboxServer {
    let rules: [FaultRule]
    do { rules = try FaultSpec.parse(options.faults ?? "") } catch { throw SandboxError(description: "--faults: \(error.description)") }

    let (w, report, store) = try initialWorld(options)
    if let store { try? store.save(w) }
    let core = SandboxCore(world: w, clock: options.clock, store: store, seed: report, saveInterval: options.saveInterval)
    core.faults.withLock { $0.set(rules, seed: options.faultSeed) }

    var logger = Logger(label: "ytempire.sandbox")
    logger.logLevel = options.logLevel
    let maxBody = options.maxBodyBytes
    let responder = CallbackResponder<SandboxContext> { request, context in
      await SandboxServer.serve(request, channel: context.channel, core: core, maxBody: maxBody)
    }
    let started = ListenerStart()
    let guarded = GuardedHTTP1(
      ConnectionLimits(
        headerTimeout: options.headerTimeout, bodyTimeout: options.bodyTimeout,
        idleTimeout: options.idleTimeout, maxConnections: options.maxConnections))
    let app = Application(
      responder: responder,
      server: guarded.server,
      configuration: .init(address: .hostname(options.host, port: options.port), serverName: nil),
      onServerRunning: { channel in started.succeed(channel.localAddress?.port ?? 0) },
      logger: logger
    )
    let group = ServiceGroup(
      configuration: .init(
        services: [app],
        gracefulShutdownSignals: options.stopOnSignals ? [.sigterm, .sigint] : [],
        logger: logger))
    let task = Task {
      do {
        try await group.run()
        started.fail(ListenFailure(address: "\(options.host):\(options.port)", reason: "the sandbox server stopped before it started"))
      } catch {
        started.fail(ListenFailure(address: "\(options.host):\(options.port)", reason: ListenFailure.reason(error)))
        await core.close()
        throw error
      }
      // Requests in flight have finished: write what the state file does not hold yet.
      await core.close()
    }
    let port: Int
    do { port = try await started.wait() } catch { throw SandboxError(description: "\(error)") }
    return SandboxServer(
      host: options.host, port: port, core: core, credentials: w.credentials, seed: report, group: group, guarded: guarded, task: task)
  }

  /// Stops the listener (graceful: requests in flight finish) and writes the state file.
  public func stop() async {
    await group.triggerGracefulShutdown()
    _ = await task.result
  }

  /// Waits until the server stops (used by the CLI together with signal handling).
  public func wait() async {
    _ = await task.result
  }

  // MARK: inspection for tests

  public var callCounts: [String: Int] { core.calls.withLock { $0 } }
  public var youtubeQuotaUsed: Int { core.state.youtube.read { $0.quotaUsed } }

  /// Connections being served now (the cap is `SandboxOptions.maxConnections`).
  public var openConnections: Int { guarded.openConnections }

  /// Connections the limits closed so far (the cap, a late head, a late body).
  public var connectionsClosedByLimits: (overCap: Int, headerTimeout: Int, bodyTimeout: Int) { guarded.gate.closed }

  public func setFaults(_ spec: String, seed: UInt64? = nil) throws {
    let rules: [FaultRule]
    do { rules = try FaultSpec.parse(spec) } catch { throw SandboxError(description: error.description) }
    core.faults.withLock { $0.set(rules, seed: seed) }
  }

  // MARK: HTTP glue

  static func serve(_ request: Request, channel: any Channel, core: SandboxCore, maxBody: Int) async -> Response {
    var headers: [String: String] = [:]
    for f in request.headers where headers[f.name.canonicalName] == nil {
      headers[f.name.canonicalName] = f.value
    }
    var body: [UInt8] = []
    do {
      let buffer = try await request.body.collect(upTo: maxBody)
      body = Array(buffer.readableBytesView)
    } catch is NIOTooManyBytesError {
      return response(.json(413, ["error": .string("request body larger than \(maxBody) bytes")]))
    } catch {
      // A malformed body (a chunk-size line that is not hex, a broken chunk) or one cut off:
      // the client's fault, and the connection cannot carry another request.
      return response(.json(400, ["error": .string("malformed request body: \(error)")], headers: [("Connection", "close")]))
    }
    let r = SandboxRequest(
      method: request.method.rawValue, path: request.uri.path, rawQuery: request.uri.query,
      headers: headers, body: body)
    let answer = await core.respond(r)
    if answer.cutAfter != nil && answer.body.isEmpty {
      // Nothing to cut half-way: drop the connection before any byte of the answer.
      try? await channel.close().get()
    }
    return response(answer)
  }

  static func response(_ r: SandboxResponse) -> Response {
    var fields = HTTPFields()
    for (k, v) in r.headers {
      if let name = HTTPField.Name(k) { fields.append(HTTPField(name: name, value: v)) }
    }
    let status = HTTPResponse.Status(code: r.status)
    if let cut = r.cutAfter {
      // Connection reset mid-response: announce the full length, send part of it, then fail the
      // body so the server closes the connection.
      let full = max(r.body.count, 2)
      let prefix = Array(r.body.prefix(min(cut, full - 1)))
      fields[.contentLength] = String(full)
      return Response(
        status: status, headers: fields,
        body: ResponseBody(contentLength: full) { writer in
          if !prefix.isEmpty { try await writer.write(ByteBuffer(bytes: prefix)) }
          throw SandboxError(description: "injected connection reset")
        })
    }
    if r.status == 204 || r.status == 304 { return Response(status: status, headers: fields) }
    return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: r.body)))
  }
}

/// Request context that keeps the connection's channel, so a fault can reset it.
struct SandboxContext: RequestContext {
  var coreContext: CoreRequestContextStorage
  let channel: any Channel

  init(source: ApplicationRequestContextSource) {
    coreContext = .init(source: source)
    channel = source.channel
  }
}
