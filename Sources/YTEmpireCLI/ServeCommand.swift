import ArgumentParser
import DriverKit
import EmpireModel
import Foundation
import Hummingbird
import Logging
import Reconciler
import Service
import ServiceLifecycle
import Synchronization

struct ServeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "serve",
    abstract: "Run as a service: converge every new commit, check for drift, serve /metrics, webhooks and a status page.",
    discussion: """
      Polls the source every source.interval (with jitter) and plans and applies each new revision \
      with the same engine as `apply`; POST /hooks/github and /hooks/gitlab trigger a reconcile at \
      once; drift checks run every serve.driftInterval. Listens on serve.listen for /healthz, \
      /readyz, /metrics and the status page at /. SIGTERM and SIGINT finish the action in flight, \
      record it and exit 0; SIGHUP reloads the configuration (a bad file is reported, the old one kept).
      """
  )

  @Option(name: .long, help: "Reconciler configuration (default: ./ytempire.yaml).")
  var config: String?

  @Option(name: .customLong("log-format"), help: "Log lines as text or json.")
  var logFormat: LogFormatOption = .text

  @Option(name: .long, help: "Listen on HOST:PORT instead of serve.listen.")
  var listen: String?

  func run() throws {
    let cmd = self
    let format: LineLogHandler.Format = cmd.logFormat == .json ? .json : .text
    if format == .json {
      // Every line on stderr is JSON in that format, diagnostics and the final error included.
      var log = Logger(label: "ytempire") { LineLogHandler(label: $0, format: .json) }
      log.logLevel = .info
      Terminal.stderrSink.withLock { $0 = { [log] text in LineLogHandler.forward(text, to: log) } }
    }
    try runBlocking {
      try await ServeRuntime(configPath: cmd.config, listen: cmd.listen, logFormat: format).run()
    }
  }
}

enum LogFormatOption: String, ExpressibleByArgument, CaseIterable {
  case text, json
}
