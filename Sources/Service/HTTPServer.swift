import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Webhooks

/// What the HTTP side asks the service.
public struct ServiceEndpoints: Sendable {
  /// Ready once the source was reached once and the state store is open; else why not.
  public var readiness: @Sendable () -> String?
  public var snapshot: @Sendable () -> StatusSnapshot
  public var metrics: ServiceMetrics
  /// The current webhook gate (SIGHUP may replace the secrets).
  public var gate: @Sendable () -> WebhookGate
  /// A verified push: reconcile now.
  public var onPush: @Sendable (String) -> Void
  /// A verified pull-request event: plan its head (never apply it).
  public var onPullRequest: @Sendable (PullRequestEvent) -> Void
  /// Refreshes gauges just before `/metrics` is rendered.
  public var beforeMetrics: @Sendable () -> Void
  /// `leader` or `standby (leader: …)` with a shared state store; nil: the only instance.
  public var role: @Sendable () -> String? = { nil }
  public init(
    readiness: @escaping @Sendable () -> String?, snapshot: @escaping @Sendable () -> StatusSnapshot, metrics: ServiceMetrics,
    gate: @escaping @Sendable () -> WebhookGate, onPush: @escaping @Sendable (String) -> Void,
    onPullRequest: @escaping @Sendable (PullRequestEvent) -> Void = { _ in },
    beforeMetrics: @escaping @Sendable () -> Void = {}
  ) {
    self.onPullRequest = onPullRequest
    self.readiness = readiness
    self.snapshot = snapshot
    self.metrics = metrics
    self.gate = gate
    self.onPush = onPush
    self.beforeMetrics = beforeMetrics
  }
}

public enum ServiceHTTP {
  static func text(_ status: HTTPResponse.Status, _ body: String, type: String = "text/plain; charset=utf-8") -> Response {
    Response(
      status: status, headers: [.contentType: type, .cacheControl: "no-store"],
      body: ResponseBody(byteBuffer: ByteBuffer(string: body)))
  }

  static func json(_ status: Int, _ fields: [String: String]) -> Response {
    let body =
      (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    return text(HTTPResponse.Status(code: status), body + "\n", type: "application/json")
  }

  static func headers(_ r: Request) -> [String: String] {
    var h: [String: String] = [:]
    for f in r.headers { h[f.name.canonicalName] = f.value }
    return h
  }

  static func hook(
    _ r: Request, _ e: ServiceEndpoints, _ check: (WebhookGate, [String: String], [UInt8]) -> WebhookVerdict,
    log: Logger, name: String
  ) async -> Response {
    // A body announced larger than the limit is refused before a byte of it is read.
    if let announced = r.headers[.contentLength].flatMap({ Int($0) }), announced > WebhookGate.maxBodyBytes {
      log.warning("webhook refused", metadata: ["hook": .string(name), "status": "413", "announced": .stringConvertible(announced)])
      var answer = json(413, ["error": "body larger than \(WebhookGate.maxBodyBytes) bytes"])
      answer.headers[.connection] = "close"
      return answer
    }
    let buffer: ByteBuffer
    do { buffer = try await r.body.collect(upTo: WebhookGate.maxBodyBytes) } catch is NIOTooManyBytesError {
      log.warning("webhook refused", metadata: ["hook": .string(name), "status": "413"])
      return json(413, ["error": "body larger than \(WebhookGate.maxBodyBytes) bytes"])
    } catch {
      // Cut off (the body timeout, the client went away) or malformed.
      log.warning("webhook refused: its body did not arrive whole", metadata: ["hook": .string(name), "status": "400"])
      var answer = json(400, ["error": "the request body did not arrive whole"])
      answer.headers[.connection] = "close"
      return answer
    }
    let verdict = check(e.gate(), headers(r), Array(buffer.readableBytesView))
    switch verdict {
    case .trigger(let why):
      let standby = e.role()?.hasPrefix("standby") == true
      log.info(
        standby ? "webhook accepted: handed to the leader" : "webhook accepted: reconcile now",
        metadata: ["hook": .string(name), "reason": .string(why)])
      e.onPush(why)
      return json(202, ["result": standby ? "handed to the leader" : "reconcile triggered", "reason": why])
    case .pullRequest(let pr):
      let why = "\(name) pull request \(pr.number) \(pr.action) at \(pr.head.prefix(12))\(pr.fromFork ? " from a fork" : "")"
      log.info("webhook accepted: plan the pull request", metadata: ["hook": .string(name), "reason": .string(why)])
      e.onPullRequest(pr)
      return json(202, ["result": "pull request plan queued", "reason": why])
    case .accepted(let why):
      log.info("webhook accepted", metadata: ["hook": .string(name), "reason": .string(why)])
      return json(200, ["result": why])
    case .rejected(let status, let message):
      log.warning("webhook refused", metadata: ["hook": .string(name), "status": .stringConvertible(status), "reason": .string(message)])
      return json(status, ["error": message])
    }
  }

  /// The routes of `serve.listen`.
  public static func router(_ e: ServiceEndpoints, logger: Logger) -> Router<BasicRequestContext> {
    let router = Router()
    router.get("/healthz") { _, _ in text(.ok, "ok\n") }
    router.get("/readyz") { _, _ in
      if let why = e.readiness() { return text(.serviceUnavailable, "not ready: \(why)\n") }
      if let role = e.role() { return text(.ok, "ready\nrole: \(role)\n") }
      return text(.ok, "ready\n")
    }
    router.get("/metrics") { _, _ in
      e.beforeMetrics()
      return Response(
        status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: e.metrics.render())))
    }
    router.get("/") { _, _ in text(.ok, StatusPage.render(e.snapshot()), type: "text/html; charset=utf-8") }
    router.post("/hooks/github") { r, _ in await hook(r, e, { $0.github(headers: $1, body: $2) }, log: logger, name: "github") }
    router.post("/hooks/gitlab") { r, _ in await hook(r, e, { $0.gitlab(headers: $1, body: $2) }, log: logger, name: "gitlab") }
    return router
  }
}
