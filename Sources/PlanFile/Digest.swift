import Crypto
import Foundation

package enum Digest {
    package static func sha256Hex(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }
    package static func sha256Hex(_ s: String) -> String { sha256Hex(Array(s.utf8)) }
}

/// Lowercase hex sha256 of `bytes`.
public func sha256Hex(_ bytes: [UInt8]) -> String { Digest.sha256Hex(bytes) }
