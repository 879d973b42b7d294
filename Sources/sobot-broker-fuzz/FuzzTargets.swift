import BrokerCore
import BrokerServer
import Foundation
import Logging
import Marketing

/// The fuzz targets. `request`: one line through the fast reader and the JSON-RPC dispatcher (with a
/// real store, token engine and modules, but no upstream reachable); `import`: a tenants file through
/// the import parser; `upstream`: a reply body from Sobot through the whole `get_token` and business
/// reply decoding; `proxy`: an HTTP request's method, target and headers through the proxy's checks.
/// None may crash; each reports a broken invariant by trapping.
enum FuzzTargets {
    static let names = ["request", "import", "upstream", "proxy"]

    static func run(_ target: String, _ input: [UInt8]) {
        switch target {
        case "import": Self.importFile(input)
        case "upstream": Self.upstreamReply(input)
        case "proxy": Self.proxyRequest(input)
        default: Self.request(input)
        }
    }

    /// The latest Unix time the issuer's arithmetic is checked at (2100-01-01).
    static let latestUnixTime = 4_102_444_800.0

    static func upstreamReply(_ body: [UInt8]) {
        do {
            let issued = try SobotReply.token(status: 200, body: body)
            guard IssuedToken.isWellFormed(issued.value), IssuedToken.lifetimeRange.contains(issued.lifetime),
                Int64(exactly: (Self.latestUnixTime + issued.lifetime).rounded(.down)) != nil
            else { fatalError("a token outside the accepted bounds was decoded") }
        } catch {
            Self.check(error, body: body)
        }
        do {
            let reply = try SobotReply.interpret(status: 200, body: body)
            for page in MarketingModule.decodePages(reply) {
                switch page {
                case .success(let json):
                    for name in ["page_no", "page_size", "page_count", "total_count"] {
                        guard let count = json[name]?.integerValue, count >= 0 else { fatalError("a page with a negative \(name)") }
                    }
                case .failure(let error) where error.code == ErrorCode.upstreamUnavailable:
                    Self.check(SobotError.unavailable(error.message), body: body)
                case .failure(let error):
                    fatalError("a page decoding failure that is not the upstream's: \(error.message)")
                }
            }
        } catch {
            Self.check(error, body: body)
        }
    }

    /// An error is one line. One the broker words itself (not a rejection, which quotes `ret_msg`)
    /// never repeats the token the reply offered; tokens short or spaced enough to occur in the
    /// broker's own wording are not looked for.
    private static func check(_ error: SobotError, body: [UInt8]) {
        let message = error.description
        guard !message.contains("\n") else { fatalError("an upstream error on several lines") }
        guard case .unavailable = error, let token = (try? JSONParser.parse(body))?["item"]?["token"]?.stringValue,
            token.utf8.count >= 16, !token.contains(" "), message.contains(token)
        else { return }
        fatalError("an upstream error repeats the token")
    }

    /// The input's first line is `METHOD TARGET`, the rest `name: value` headers. Whatever the proxy
    /// accepts must be safe to append to a base URL and send: it keeps the host, names no `.` or `..`
    /// segment and never `get_token`; refusals are one line that does not repeat the target.
    static func proxyRequest(_ input: [UInt8]) {
        let lines = String(decoding: input, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let requestLine = lines.first.map { $0.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false) } ?? []
        let method = requestLine.first.map(String.init) ?? ""
        let target = requestLine.count > 1 ? String(requestLine[1]) : ""
        let headers = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), String(line[line.index(after: colon)...]))
        }
        switch ProxyRequestCheck.check(method: method, uri: target, headers: headers) {
        case .success(let call):
            let path = call.path.value
            guard path.hasPrefix("/"), !path.contains("//"), path.utf8.count <= SobotPath.maximumLength else { fatalError("an unsafe path was accepted") }
            guard !path.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) else { fatalError("a dot segment was accepted") }
            var trimmed = path.lowercased()
            while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
            guard trimmed != "/api/get_token" else { fatalError("get_token was accepted") }
            let url = "https://sg.sobot.io" + call.target
            guard let parsed = URLComponents(string: url), parsed.host == "sg.sobot.io", parsed.percentEncodedPath == path else {
                fatalError("an accepted target changes the URL's host or path")
            }
            if let contentType = call.contentType, contentType.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) {
                fatalError("a header value with a control character was accepted")
            }
        case .failure(let error):
            guard !error.message.contains("\n") else { fatalError("a refusal on several lines") }
            if target.utf8.count > 12, error.message.contains(target) { fatalError("a refusal repeats the target") }
        }
    }

    static func request(_ line: [UInt8]) {
        if let problem = FastPathConsistency.disagreement(on: line) {
            fatalError("fast path: \(problem)")
        }
        let done = DispatchSemaphore(value: 0)
        let dispatcher = Self.dispatcher
        Task {
            let reply = await dispatcher.reply(toLine: line, context: CallContext(peer: PeerCredentials(pid: 1, uid: 0, gid: 0)))
            if let reply {
                guard reply.last == 0x0a, (try? JSONParser.parse(Array(reply.dropLast()))) != nil else {
                    fatalError("the dispatcher wrote a reply that is not one JSON line")
                }
            }
            done.signal()
        }
        done.wait()
    }

    static func importFile(_ bytes: [UInt8]) {
        do {
            _ = try TenantImportFile.parse(bytes, environment: ["SET": "value"], regions: RegionDirectory())
        } catch {
            guard !error.problems.isEmpty else { fatalError("an import error without a problem") }
            for problem in error.problems {
                guard problem.path?.isEmpty != true, !problem.message.isEmpty, !problem.description.contains("\n") else {
                    fatalError("an import problem with an empty path or on several lines")
                }
            }
        }
    }

    /// A dispatcher over a temporary home with no tenants, so no request reaches the network.
    static let dispatcher: RPCDispatcher = {
        var logger = Logger(label: "fuzz")
        logger.logLevel = .critical
        let home = NSTemporaryDirectory() + "sobot-broker-fuzz-\(getpid())"
        let brokerHome = BrokerHome(paths: BrokerPaths(home: home))
        guard (try? brokerHome.initialize()) != nil, let database = try? brokerHome.openStore(), let registry = try? ModuleRegistry([])
        else { fatalError("cannot set up the fuzzing home at \(home)") }
        let client = SobotClient(regions: RegionDirectory(baseURLs: ["sg": "http://127.0.0.1:9"]), logger: logger)
        let clock = SystemClock()
        let store = AsyncSQLiteStore(database)
        let tokens = TokenManager(
            store: store,
            issuer: SobotTokenIssuer(store: database, client: client, clock: clock, logger: logger),
            clock: clock,
            policy: TokenPolicy(),
            logger: logger
        )
        let access = AccessControl(policy: AccessPolicy(ownerUID: 0, rules: []))
        return RPCDispatcher(
            handlers: BrokerMethods(tokens: tokens, store: store, registry: registry, access: access, clientKeys: ClientKeyVerifier(keys: [], clock: clock))
                .handlers,
            registry: registry,
            moduleContext: ModuleContext(upstream: BrokerUpstream(tokens: tokens, client: client, store: store, logger: logger), logger: logger, clock: clock),
            access: access,
            audit: nil,
            logger: logger
        )
    }()
}

#if FUZZING
/// libFuzzer's per-input callback; the target is chosen with SOBOT_FUZZ_TARGET (request, import or upstream).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    FuzzTargets.run(ProcessInfo.processInfo.environment["SOBOT_FUZZ_TARGET"] ?? "request", Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32
) -> Int32

/// SwiftPM links an executable's `main` to `<module>_main`; here that hands control to libFuzzer.
@_cdecl("sobot_broker_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments, fuzzOneInput)
}
#else
/// Without libFuzzer: replays files (a corpus, crash reproducers) through a target.
/// usage: sobot-broker-fuzz request|import|upstream FILE_OR_DIRECTORY…
@main
struct CorpusReplay {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard let target = arguments.first, FuzzTargets.names.contains(target), arguments.count > 1 else {
            FileHandle.standardError.write(Data("usage: sobot-broker-fuzz \(FuzzTargets.names.joined(separator: "|")) FILE_OR_DIRECTORY…\n".utf8))
            exit(64)
        }
        var files: [String] = []
        for path in arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue {
                files += ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { path + "/" + $0 }
            } else {
                files.append(path)
            }
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { continue }
            FuzzTargets.run(target, Array(data))
        }
        print("replayed \(files.count) inputs through \(target)")
    }
}
#endif
