import DriverKit
import Foundation
import Logging
import Synchronization

/// swift-log handler writing one line per event to stderr: `text` (`time level message k=v …`)
/// or `json` (`{"time","level","message",…metadata}`). Control characters are escaped in both.
public struct LineLogHandler: LogHandler {
  public enum Format: String, Sendable, CaseIterable { case text, json }
  public var metadata: Logger.Metadata = [:]
  public var logLevel: Logger.Level = .info
  let format: Format
  let label: String
  let sink: @Sendable (String) -> Void

  public init(label: String, format: Format, sink: @escaping @Sendable (String) -> Void = LineLogHandler.stderr) {
    self.label = label
    self.format = format
    self.sink = sink
  }

  /// Logs plain text meant for stderr (diagnostics, warnings, the final `error:` line) one event
  /// per line, so that with `--log-format json` every line the process writes is JSON. The
  /// level is read off the line (`error:` / `: error:` → error, `warning` likewise).
  public static func forward(_ text: String, to logger: Logger) {
    for line in text.split(whereSeparator: \.isNewline) where !line.allSatisfy(\.isWhitespace) {
      let l = String(line)
      let level: Logger.Level =
        l.hasPrefix("error:") || l.contains(": error: ")
        ? .error
        : l.hasPrefix("warning:") || l.contains(": warning: ") ? .warning : .info
      logger.log(level: level, "\(l)")
    }
  }

  public static let stderr: @Sendable (String) -> Void = { line in
    let bytes = Array(line.utf8)
    bytes.withUnsafeBufferPointer { p in
      var off = 0
      while off < p.count {
        let n = write(2, p.baseAddress! + off, p.count - off)
        if n <= 0 { break }
        off += n
      }
    }
  }

  static let timeFormat = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

  public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  static func flat(_ v: Logger.Metadata.Value) -> String {
    switch v {
    case .string(let s): s
    case .stringConvertible(let c): c.description
    case .array(let a): a.map(flat).joined(separator: ",")
    case .dictionary(let d): d.sorted { $0.key < $1.key }.map { "\($0.key)=\(flat($0.value))" }.joined(separator: ",")
    }
  }

  static func escapeText(_ s: String) -> String {
    var out = ""
    for ch in s.unicodeScalars {
      if ch.value < 0x20 || ch.value == 0x7F {
        out += ch == "\n" ? "\\n" : ch == "\t" ? "\\t" : String(format: "\\x%02x", ch.value)
      } else {
        out.unicodeScalars.append(ch)
      }
    }
    return out
  }

  static func jsonQuote(_ s: String) -> String { JSONValue.quoted(s) }

  public func log(event: LogEvent) {
    var all = metadata
    for (k, v) in event.metadata ?? [:] { all[k] = v }
    let time = Date().formatted(Self.timeFormat)
    switch format {
    case .text:
      var line = "\(time) \(event.level.rawValue) \(Self.escapeText(event.message.description))"
      for (k, v) in all.sorted(by: { $0.key < $1.key }) {
        let s = Self.flat(v)
        line += " \(Self.escapeText(k))=" + (s.contains(" ") || s.isEmpty ? Self.jsonQuote(s) : Self.escapeText(s))
      }
      sink(line + "\n")
    case .json:
      var line =
        "{\"time\":\(Self.jsonQuote(time)),\"level\":\(Self.jsonQuote(event.level.rawValue)),\"message\":\(Self.jsonQuote(event.message.description))"
      for (k, v) in all.sorted(by: { $0.key < $1.key }) where !["time", "level", "message"].contains(k) {
        line += ",\(Self.jsonQuote(k)):\(Self.jsonQuote(Self.flat(v)))"
      }
      sink(line + "}\n")
    }
  }
}
