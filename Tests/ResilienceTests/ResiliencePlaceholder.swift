import Testing
@testable import Resilience

// Replaced by the module's tests in its issue.
