import Resilience

/// The HTTP side of a failed call, whichever layer threw it: a `ServiceFailure`, or the
/// `RetriesExhausted` wrapping the last one. Lets a driver react to a status (a 401 → refresh
/// the token; a 404 on delete → already gone) without importing the resilience layer.
/// Other errors (the ledger's `QuotaExhausted`, `CircuitOpenError`, cancellation) are not
/// call failures: `init` returns nil for them, and drivers pass them on unchanged.
public struct CallFailure: Sendable, CustomStringConvertible {
    /// HTTP status, when there was a response.
    public var status: Int?
    /// The provider's machine-readable reason (YouTube `errors[].reason`, OAuth `error`, the curl error kind).
    public var reason: String?
    /// Human-readable, from the response body (already free of request secrets).
    public var message: String

    public init(status: Int?, reason: String?, message: String) {
        self.status = status; self.reason = reason; self.message = message
    }

    public init?(_ error: any Error) {
        let f: ServiceFailure
        if let e = error as? ServiceFailure { f = e } else if let e = error as? RetriesExhausted { f = e.last } else { return nil }
        self.init(status: f.status, reason: f.reason, message: f.message)
    }

    public var description: String {
        (status.map { ServiceErrorText.statusAndReason($0, reason ?? "") } ?? ("no response" + (reason.map { " \($0)" } ?? ""))) + ": " + message
    }
}

/// How the drivers' errors show a status and a reason.
public enum ServiceErrorText {
    /// "HTTP 403 quotaExceeded"; a reason that only repeats the status (the fallback reason
    /// "HTTP 302" of an answer without one) is not written twice.
    public static func statusAndReason(_ status: Int?, _ reason: String) -> String {
        guard let status else { return reason }
        let s = "HTTP \(status)"
        return reason.isEmpty || reason == s ? s : s + " " + reason
    }
}

/// A driver's error that carries the service's machine-readable reason and status, so the
/// engine can tell a quota answer (defer) or a rejection (stall) without knowing the driver.
public protocol ServiceReasonedError: Error {
    var serviceStatus: Int? { get }
    var serviceReason: String? { get }
}
