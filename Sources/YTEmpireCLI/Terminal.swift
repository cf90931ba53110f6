import EmpireModel
import Foundation
import Synchronization

/// Output helpers: colour only on a TTY and never with NO_COLOR.
enum Terminal {
  static func useColor(_ fd: Int32) -> Bool {
    ProcessInfo.processInfo.environment["NO_COLOR"] == nil && isatty(fd) == 1
      && ProcessInfo.processInfo.environment["TERM"] != "dumb"
  }

  /// Takes what would go to stderr instead (`serve --log-format json` logs it as JSON lines).
  static let stderrSink = Mutex<(@Sendable (String) -> Void)?>(nil)

  static func write(_ s: String, to handle: FileHandle) {
    if handle === FileHandle.standardError, let sink = stderrSink.withLock({ $0 }) {
      sink(s)
      return
    }
    handle.write(Data(s.utf8))
  }

  static func render(_ d: Diagnostic, color: Bool) -> String {
    guard color else { return d.rendered }
    let sev: String
    switch d.severity {
    case .error: sev = "\u{1B}[1;31merror\u{1B}[0m"
    case .warning: sev = "\u{1B}[1;33mwarning\u{1B}[0m"
    case .note: sev = "\u{1B}[1;36mnote\u{1B}[0m"
    }
    // File names and messages are escaped: a crafted value must not forge a line or a colour.
    let e = TextEscape.escape
    var s = "\u{1B}[1m\(e(d.file)):\(d.line):\(d.column):\u{1B}[0m \(sev): \(e(d.message)) \u{1B}[2m[\(d.code)]\u{1B}[0m"
    for n in d.notes { s += "\n\u{1B}[1m\(e(n.file)):\(n.line):\(n.column):\u{1B}[0m \u{1B}[1;36mnote\u{1B}[0m: \(e(n.message))" }
    return s
  }
}
