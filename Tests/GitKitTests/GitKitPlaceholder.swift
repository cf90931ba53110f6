import Testing
@testable import GitKit

// Replaced by the module's tests in its issue.
