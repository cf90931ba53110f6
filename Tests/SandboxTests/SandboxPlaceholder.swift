import Testing
@testable import Sandbox

// Replaced by the module's tests in its issue.
