import PostgresNIO

/// A statement whose shape depends on its data (multi-row VALUES lists): SQL text with `$n`
/// placeholders, and the values bound to them. Values are never spliced into the text.
struct SQL {
  private(set) var text = ""
  private(set) var binds = PostgresBindings()

  init(_ text: String = "") { self.text = text }

  mutating func add(_ s: String) { text += s }

  /// A placeholder bound to `value` (NULL for nil), cast to `type` so that a VALUES list
  /// types its columns from the table, not from the first row's values.
  mutating func bind<V: PostgresDynamicTypeEncodable>(_ value: V?, as type: String) {
    if let value { binds.append(value) } else { binds.appendNull() }
    text += "$\(binds.count)::\(type)"
  }

  var query: PostgresQuery { PostgresQuery(unsafeSQL: text, binds: binds) }

  /// PostgreSQL's limit on the values one statement may bind.
  static let maxBinds = 65_535

  /// One statement per chunk of `rows` (as many as the bind limit allows): `head`, then the
  /// chunk as a VALUES list of texts, then `tail`.
  static func chunked(_ rows: [[String?]], head: (inout SQL) -> Void, tail: String) -> [PostgresQuery] {
    let perStatement = max(1, (maxBinds - 8) / max(1, rows.first?.count ?? 1))
    return stride(from: 0, to: rows.count, by: perStatement).map { start in
      var q = SQL()
      head(&q)
      q.add("(VALUES ")
      for (i, row) in rows[start..<min(start + perStatement, rows.count)].enumerated() {
        q.add(i == 0 ? "(" : ", (")
        for (j, value) in row.enumerated() {
          if j > 0 { q.add(", ") }
          q.bind(value, as: "text")
        }
        q.add(")")
      }
      q.add(tail)
      return q.query
    }
  }

  /// The last of `items` for each key, in the order the keys first appear (one upsert may not
  /// touch a row twice).
  static func lastOfEach<Item, Key: Hashable>(_ items: [Item], key: (Item) -> Key) -> [Item] {
    var at: [Key: Int] = [:]
    var out: [Item] = []
    for item in items {
      if let i = at[key(item)] {
        out[i] = item
      } else {
        at[key(item)] = out.count
        out.append(item)
      }
    }
    return out
  }
}
