/// Per-process random seed for key hashing, so that crafted files cannot force collisions.
private let keyHashSeed: UInt64 = UInt64.random(in: .min ... .max)

/// Mapping keys are compared by their UTF-8 bytes: YAML does not normalise Unicode, so `é`
/// and `e\u{301}` are different keys (Swift's `String ==` would call them equal).
enum KeyBytes {
  @inline(__always)
  static func equal(_ a: String, _ b: String) -> Bool {
    a.utf8.count == b.utf8.count && a.utf8.elementsEqual(b.utf8)
  }

  /// Seeded FNV-1a over the UTF-8 bytes with a murmur3 finaliser.
  static func hash(_ text: String) -> UInt64 {
    var text = text
    var h = text.withUTF8 { bytes in
      var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ keyHashSeed
      for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
      return h
    }
    h ^= h >> 33
    h = h &* 0xff51_afd7_ed55_8ccd
    h ^= h >> 33
    h = h &* 0xc4ce_b9fe_1a85_ec53
    h ^= h >> 33
    return h
  }
}

/// Hash → buffer index of a mapping's keys, used once a mapping has many keys (an open
/// addressing table: much cheaper than `Dictionary<String, Int>`, whose `String` hashing
/// normalises Unicode).
struct KeyTable {
  private var hashes: [UInt64]
  private var indices: [Int]  // -1: empty slot
  private var count = 0

  init(minimumCapacity: Int) {
    var capacity = 32
    while capacity < 2 * minimumCapacity { capacity <<= 1 }
    hashes = Array(repeating: 0, count: capacity)
    indices = Array(repeating: -1, count: capacity)
  }

  /// The first stored index with this hash for which `matches` is true.
  @inline(__always)
  func find(_ hash: UInt64, where matches: (Int) -> Bool) -> Int? {
    let mask = indices.count - 1
    var slot = Int(truncatingIfNeeded: hash) & mask
    while true {
      let index = indices[slot]
      if index < 0 { return nil }
      if hashes[slot] == hash && matches(index) { return index }
      slot = (slot + 1) & mask
    }
  }

  mutating func insert(_ hash: UInt64, index: Int) {
    if 2 * (count + 1) > indices.count { grow() }
    let mask = indices.count - 1
    var slot = Int(truncatingIfNeeded: hash) & mask
    while indices[slot] >= 0 { slot = (slot + 1) & mask }
    hashes[slot] = hash
    indices[slot] = index
    count += 1
  }

  private mutating func grow() {
    let oldHashes = hashes
    let oldIndices = indices
    let capacity = 2 * indices.count
    hashes = Array(repeating: 0, count: capacity)
    indices = Array(repeating: -1, count: capacity)
    count = 0
    for slot in 0..<oldIndices.count where oldIndices[slot] >= 0 {
      insert(oldHashes[slot], index: oldIndices[slot])
    }
  }
}
