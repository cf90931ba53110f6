import Testing
@testable import CurlHTTP

// Replaced by the module's tests in its issue.
