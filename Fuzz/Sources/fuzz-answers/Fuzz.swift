// Fuzz target: the HTTP answers the drivers parse. Each driver (YouTube, Vault, Cloudflare, n8n)
// observes the example repository's resources through the real resilient path (ResilientHTTP:
// classification, Retry-After, retries and deferral on a clock that jumps over every wait, as
// the engine's registry configures it) over a transport that plays the fuzzed answers; what it
// observed is then diffed. Nothing may trap, hang or throw an error of an unexpected type.
//
// Input: a control byte (bits 0–1: the driver), then up to 8 answers separated by two 0x00
// bytes, each `STATUS` line, header lines (`Name: value`), an empty line, the body. The n-th call
// gets the n-th answer (the last one repeats). YouTube's token endpoint always answers a token.
import CurlHTTP
import CloudflareDriver
import DriverKit
import EmpireModel
import Foundation
import FuzzDriver
import N8nDriver
import Resilience
import Synchronization
import VaultDriver
import YouTubeDriver

/// The example repository's files, read once as plain byte arrays: path and content.
/// The resources are decoded anew for each input (a few files, the driver's folder and the
/// RateLimits) and freed with it: a global of decoded resources reads as a leak to
/// LeakSanitizer, which cannot follow pointers Swift keeps in enum payloads' spare bits.
let exampleFiles: [(path: [UInt8], bytes: [UInt8])] = {
    let here = URL(fileURLWithPath: #filePath)
    let root = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("examples/empire").path
    var out: [(path: [UInt8], bytes: [UInt8])] = []
    for case let rel as String in FileManager.default.enumerator(atPath: root)?.allObjects ?? [] {
        guard let data = FileManager.default.contents(atPath: root + "/" + rel) else { continue }
        out.append((Array(rel.utf8), Array(data)))
    }
    precondition(!out.isEmpty, "examples/empire not found from \(here.path)")
    return out
}()

/// The example's resources of one folder (and its RateLimits, for pricing), with its other files.
func desiredIndex(folder: String) -> DesiredIndex {
    var sources: [ManifestSource] = []
    var files: [String: [UInt8]] = [:]
    for f in exampleFiles {
        let rel = String(decoding: f.path, as: UTF8.self)
        if rel.hasSuffix(".yaml") {
            guard rel.hasPrefix(folder + "/") || rel.hasPrefix("ratelimits/") else { continue }
            sources.append(ManifestSource(displayPath: rel, relativePath: rel, content: .bytes(f.bytes)))
        } else {
            files[rel] = f.bytes
        }
    }
    var options = LoadOptions()
    options.crossResourceRules = false
    options.parallelism = 1
    let report = ManifestLoader.validate(sources, options: options)
    precondition(report.isValid, "examples/empire/\(folder) does not validate")
    return DesiredIndex(report.resources, files: .memory(files))
}

/// The drivers, made for each input (nothing decoded or built outlives it).
func makeDriver(_ which: Int) -> any Driver {
    let secret = LazySecret.literal("fuzz", "fuzz-secret-value")
    switch which {
    case 0: return YouTubeDriver(config: YouTubeDriverConfig(endpoint: "http://127.0.0.1:9/youtube/v3", tokenEndpoint: "http://127.0.0.1:9/token",
                                                             clientId: secret, clientSecret: secret, credentials: { _ in secret }))
    case 1: return VaultDriver(config: VaultDriverConfig(endpoint: "http://127.0.0.1:9", token: secret))
    case 2: return CloudflareDriver(config: CloudflareDriverConfig(endpoint: "http://127.0.0.1:9/client/v4", token: secret))
    default: return N8nDriver(config: N8nDriverConfig(endpoint: "http://127.0.0.1:9", apiKey: secret))
    }
}
let folders: [(kind: Kind, folder: String)] = [(.channel, "channels"), (.securityPolicy, "security"), (.cdnZone, "cdn"), (.schedule, "schedules")]

/// Plays the answers in order; the token endpoint gets a token.
final class Answers: HTTPTransport {
    let answers: [HTTPResponse]
    let next = Counter()
    init(_ a: [HTTPResponse]) { answers = a }
    func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        if request.url.hasSuffix("/token") {
            return HTTPResponse(status: 200, headers: ["Content-Type": "application/json"],
                                body: Array(#"{"access_token":"ya29.fuzz","expires_in":3599,"token_type":"Bearer"}"#.utf8))
        }
        let n = next.increment()
        return answers[min(n, answers.count - 1)]
    }
}

final class Counter: Sendable {
    private let value = Mutex(0)
    func increment() -> Int { value.withLock { v in defer { v += 1 }; return v } }
}

final class Cache: DriverCache {
    private let values = Mutex<[String: (String, Date?)]>([:])
    func value(_ key: String) throws -> (value: String, expires: Date?)? { values.withLock { $0[key].map { ($0.0, $0.1) } } }
    func setValue(_ key: String, _ value: String?, expires: Date?) throws { values.withLock { $0[key] = value.map { ($0, expires) } } }
}

/// `STATUS\nName: value\n…\n\nBODY`.
func answer(_ bytes: ArraySlice<UInt8>) -> HTTPResponse {
    let text = Array(bytes)
    var i = 0
    func line() -> String? {
        guard i < text.count else { return nil }
        let start = i
        while i < text.count && text[i] != 0x0A { i += 1 }
        let l = String(decoding: text[start..<i], as: UTF8.self)
        if i < text.count { i += 1 }
        return l
    }
    let status = Int(line()?.prefix(3) ?? "") ?? 200
    var headers: [HTTPHeader] = []
    while let l = line(), !l.isEmpty {
        guard let colon = l.firstIndex(of: ":") else { continue }
        headers.append(HTTPHeader(String(l[..<colon]), String(l[l.index(after: colon)...]).trimmingCharacters(in: .whitespaces)))
    }
    return HTTPResponse(status: status, headers: HTTPHeaders(headers), body: Array(text[min(i, text.count)...]))
}

func split(_ bytes: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
    var parts: [ArraySlice<UInt8>] = []
    var start = bytes.startIndex, i = bytes.startIndex
    while i < bytes.endIndex && parts.count < 7 {
        if bytes[i] == 0, i + 1 < bytes.endIndex, bytes[i + 1] == 0 {
            parts.append(bytes[start..<i]); i += 2; start = i
        } else { i += 1 }
    }
    parts.append(bytes[start..<bytes.endIndex])
    return parts
}

func fuzzOne(_ bytes: [UInt8]) {
    guard let control = bytes.first else { return }
    let which = Int(control & 3)
    let driver = makeDriver(which)
    let transport = Answers(split(bytes.dropFirst()).map(answer))
    let clock = ManualClock(autoAdvance: true)
    let http = ResilientHTTP(http: transport, limits: ServiceLimits(spec: nil, service: driver.name, clock: clock),
                             breakers: BreakerRegistry(clock: clock), clock: clock, random: { 0.5 }, maxRetryWait: .seconds(330))
    let client = ResilientServiceClient(http)
    let index = desiredIndex(folder: folders[which].folder)
    let pricing = Pricing(index)
    let context = DriverContext(desired: index, pricing: pricing, cache: Cache(), client: { _ in client }, now: { clock.wallNow })
    let targets = index.all(folders[which].kind).prefix(2).map { ObserveTarget(id: ResourceID($0), desired: driver.desired($0, in: index), external: [:]) }
    let done = DispatchSemaphore(value: 0)
    Task {
        do {
            let observed = try await driver.observe(targets, context: context)
            for t in targets {
                if case .observed(let state, let ext)? = observed[t.id] {
                    _ = driver.diff(DiffInput(id: t.id, desired: t.desired, observed: state, external: ext, pricing: pricing))
                    _ = driver.findings(DiffInput(id: t.id, desired: t.desired, observed: state, external: ext, pricing: pricing), now: clock.wallNow)
                }
            }
        } catch let e as RetryAfterDeferral {
            _ = e.description
        } catch let e as CircuitOpenError {
            _ = e.description
        } catch let e as OutcomeUnknown {
            _ = e.description
        } catch let e as any DriverError {
            _ = (e.category, e.reasonCode)
        } catch {
            _ = "\(error)"
        }
        done.signal()
    }
    done.wait()
}

@main struct Fuzz {
    static func main() { fuzzMain(fuzzOne) }
}
