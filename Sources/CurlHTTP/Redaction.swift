import Basics

extension Redaction {
  /// The headers with every credential's value (`Redaction.isSecretHeader`) masked.
  public static func headers(_ h: HTTPHeaders) -> HTTPHeaders {
    HTTPHeaders(h.fields.map { isSecretHeader($0.name) ? HTTPHeader($0.name, mask) : $0 })
  }
}
