/// A span of time written as `30s`, `5m`, `8h`, `7d`, `1h30m` or `500ms` in manifests.
/// Stored as whole milliseconds; `description` gives back the canonical spelling.
public struct ModelDuration: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }
    public static func seconds(_ s: Int64) -> ModelDuration { ModelDuration(milliseconds: s * 1000) }

    public var seconds: Double { Double(milliseconds) / 1000 }
    public var swiftDuration: Duration { .milliseconds(milliseconds) }

    public static func < (a: ModelDuration, b: ModelDuration) -> Bool { a.milliseconds < b.milliseconds }

    /// Units in the order they must appear.
    static let units: [(suffix: String, ms: Int64)] = [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)]

    /// Parses the manifest spelling. Units must appear at most once, largest first.
    public static func parse(_ text: String) -> ModelDuration? {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 40 else { return nil }
        var i = 0
        var total: Int64 = 0
        var lastUnit = -1
        while i < bytes.count {
            var value: Int64 = 0
            let start = i
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int64(bytes[i] - 0x30))
                if o1 || o2 { return nil }
                value = a
                i += 1
            }
            if i == start { return nil }
            // Unit: "ms" must be tried before "m".
            var unit = -1
            if i + 1 < bytes.count, bytes[i] == UInt8(ascii: "m"), bytes[i + 1] == UInt8(ascii: "s") {
                unit = 4; i += 2
            } else if i < bytes.count {
                switch bytes[i] {
                case UInt8(ascii: "d"): unit = 0
                case UInt8(ascii: "h"): unit = 1
                case UInt8(ascii: "m"): unit = 2
                case UInt8(ascii: "s"): unit = 3
                default: return nil
                }
                i += 1
            } else {
                return nil
            }
            if unit <= lastUnit { return nil }
            lastUnit = unit
            let (p, o3) = value.multipliedReportingOverflow(by: units[unit].ms)
            let (t, o4) = total.addingReportingOverflow(p)
            if o3 || o4 { return nil }
            total = t
        }
        return ModelDuration(milliseconds: total)
    }

    public var description: String {
        if milliseconds == 0 { return "0s" }
        var rest = milliseconds
        var out = ""
        for (suffix, ms) in Self.units where rest >= ms {
            out += "\(rest / ms)\(suffix)"
            rest %= ms
        }
        return out
    }

    public init(from decoder: any Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let d = ModelDuration.parse(s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "invalid duration \(s)"))
        }
        self = d
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
