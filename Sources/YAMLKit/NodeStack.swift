/// The children of all open collections, in one contiguous buffer. Completed
/// collections *move* their children out (no retain/release per node).
struct NodeStack: ~Copyable {
  private var base: UnsafeMutablePointer<YAMLNode>
  private var capacity: Int
  private(set) var count = 0

  init(capacity: Int) {
    self.capacity = max(capacity, 16)
    self.base = UnsafeMutablePointer<YAMLNode>.allocate(capacity: self.capacity)
  }

  deinit {
    base.deinitialize(count: count)
    base.deallocate()
  }

  @inline(__always)
  mutating func append(_ node: consuming YAMLNode) {
    if count == capacity { grow() }
    (base + count).initialize(to: node)
    count += 1
  }

  private mutating func grow() {
    let newCapacity = capacity * 2
    let newBase = UnsafeMutablePointer<YAMLNode>.allocate(capacity: newCapacity)
    newBase.moveInitialize(from: base, count: count)
    base.deallocate()
    base = newBase
    capacity = newCapacity
  }

  /// Read access without copying the node.
  subscript(index: Int) -> YAMLNode {
    unsafeAddress { UnsafePointer(base + index) }
  }

  // Note: `Array(unsafeUninitializedCapacity:)` is not specialised and looks up generic
  // metadata on every call; reserve + append is specialised and cheaper here.

  /// Moves the nodes from `start` to the end into a new array.
  mutating func popNodes(from start: Int) -> [YAMLNode] {
    let n = count - start
    var nodes: [YAMLNode] = []
    if n == 0 { return nodes }
    nodes.reserveCapacity(n)
    var p = base + start
    for _ in 0..<n {
      nodes.append(p.move())
      p += 1
    }
    count = start
    return nodes
  }

  /// Moves alternating key/value nodes from `start` to the end into pairs.
  mutating func popPairs(from start: Int) -> [YAMLPair] {
    let n = (count - start) / 2
    var pairs: [YAMLPair] = []
    if n == 0 {
      count = start
      return pairs
    }
    pairs.reserveCapacity(n)
    var p = base + start
    for _ in 0..<n {
      pairs.append(YAMLPair(key: p.move(), value: (p + 1).move()))
      p += 2
    }
    count = start
    return pairs
  }
}
