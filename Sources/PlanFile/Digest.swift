import Crypto
import Foundation

package enum Digest {
  package static func sha256Hex(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
  }
  package static func sha256Hex(_ s: String) -> String { sha256Hex(Array(s.utf8)) }

  package static func hmacSHA256Hex(key: [UInt8], _ bytes: [UInt8]) -> String {
    HMAC<SHA256>.authenticationCode(for: bytes, using: SymmetricKey(data: key)).map { String(format: "%02x", $0) }.joined()
  }

  /// Compares two digests in time independent of where they differ.
  package static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8)
    let y = Array(b.utf8)
    guard x.count == y.count else { return false }
    var diff: UInt8 = 0
    for i in x.indices { diff |= x[i] ^ y[i] }
    return diff == 0
  }
}

/// Lowercase hex sha256 of `bytes`.
public func sha256Hex(_ bytes: [UInt8]) -> String { Digest.sha256Hex(bytes) }
