// Fuzz target: the sandbox's request handlers (every emulator and the admin API), through
// SandboxHandlers — the dispatch the HTTP server calls, without the server.
//
// Input: up to 8 requests separated by a 0x00 0x00 pair, each
//   METHOD /path?query\n
//   name: value\n ...        (headers)
//   \n
//   body
// answered in order against a fresh copy of a small seeded world (one channel with its
// credentials and refresh token), so a request can create what the next one reads. Every
// request must get an HTTP status 100–599; the handlers must neither crash nor trap.
import Foundation
import FuzzDriver
import Sandbox
import Synchronization

final class Answers: Sendable {
    let value = Mutex<[SandboxResponse]>([])
}

let seedDir: String = {
    let dir = NSTemporaryDirectory() + "ytempire-fuzz-sandbox-seed"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let channel = """
    apiVersion: ytempire.io/v1
    kind: Channel
    metadata: {name: tech-daily}
    spec:
      youtube: {channelId: UCabcdefghijklmnopqrstuv, credentials: youtube-tech-daily}
      branding: {title: Tech Daily}
      limits: {quotaShare: 0.5}
    """
    try? channel.write(toFile: dir + "/channel.yaml", atomically: true, encoding: .utf8)
    return dir
}()

let handlers: SandboxHandlers = {
    var o = SandboxOptions()
    o.seedFrom = seedDir
    do { return try SandboxHandlers(o) } catch { fatalError("cannot seed the sandbox: \(error)") }
}()

func parse(_ bytes: ArraySlice<UInt8>) -> SandboxRequest? {
    guard let nl = bytes.firstIndex(of: 0x0A) else { return nil }
    let first = String(decoding: bytes[bytes.startIndex..<nl], as: UTF8.self).split(separator: " ", maxSplits: 1)
    guard first.count == 2 else { return nil }
    let target = first[1]
    let path = String(target.prefix { $0 != "?" })
    let query = target.firstIndex(of: "?").map { String(target[target.index(after: $0)...]) }
    var headers: [String: String] = [:]
    var i = nl + 1
    while i < bytes.endIndex {
        let end = bytes[i...].firstIndex(of: 0x0A) ?? bytes.endIndex
        let line = bytes[i..<end]
        i = end < bytes.endIndex ? end + 1 : end
        if line.isEmpty { break }
        if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            let name = String(decoding: line[line.startIndex..<colon], as: UTF8.self).lowercased()
            let value = String(decoding: line[(colon + 1)...], as: UTF8.self).trimmingCharacters(in: .whitespaces)
            if headers[name] == nil { headers[name] = value }
        }
    }
    return SandboxRequest(method: String(first[0]), path: path, rawQuery: query, headers: headers, body: Array(bytes[i...]))
}

func fuzzOne(_ bytes: [UInt8]) {
    var requests: [SandboxRequest] = []
    var start = 0
    var i = 0
    while i <= bytes.count && requests.count < 8 {
        if i == bytes.count || (i + 1 < bytes.count && bytes[i] == 0 && bytes[i + 1] == 0) {
            if let r = parse(bytes[start..<i]) { requests.append(r) }
            start = i + 2
            i += 2
            continue
        }
        i += 1
    }
    guard !requests.isEmpty else { return }
    let done = DispatchSemaphore(value: 0)
    let answers = Answers()
    let batch = requests
    Task {
        let got = await handlers.run(batch)
        answers.value.withLock { $0 = got }
        done.signal()
    }
    done.wait()
    for a in answers.value.withLock({ $0 }) where !(100...599).contains(a.status) {
        fatalError("a request was answered with status \(a.status)")
    }
}

@main struct Fuzz {
    static func main() { fuzzMain(fuzzOne) }
}
