import BrokerCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A built-in stand-in for Sobot's open API, served over real HTTP on 127.0.0.1.
///
/// It verifies `get_token` signatures, issues a fresh token per call and revokes the appid's previous
/// one (the worst case Sobot's documentation warns of), answers `900002` for stale tokens, serves the
/// two marketing endpoints with paging, echoes any other `/api/…` call (for forwarded calls), and can
/// be told to fail (`SimulatorFault`).
public final class SobotSimulator: Sendable {
    private let state: Mutex<SimulatorState>
    private let server = Mutex<(channel: Channel?, task: Task<Void, Never>?)>((nil, nil))
    private let logger: Logger

    /// Token lifetimes the command line may ask for: those the broker accepts (hostile ones are
    /// sent with the `expires_in:` fault).
    public static let commandLineTokenTTLs = IssuedToken.lifetimeRange

    /// Why `ttl` is refused on the command line, or nil.
    public static func tokenTTLProblem(_ ttl: Double) -> String? {
        let range = Self.commandLineTokenTTLs
        return range.contains(ttl) ? nil : "--token-ttl must be \(Int(range.lowerBound))-\(Int(range.upperBound)) seconds"
    }

    public init(tokenTTL: Double = 7200, logger: Logger = Logger(label: "sobot-simulator")) {
        self.state = Mutex(SimulatorState(tokenTTL: tokenTTL))
        self.logger = logger
    }

    // MARK: Configuration and observation

    public func register(appid: String, appKey: String) {
        self.state.withLock { $0.appKeys[appid] = appKey }
    }

    public var tokenTTL: Double {
        get { self.state.withLock { $0.tokenTTL } }
        set { self.state.withLock { $0.tokenTTL = newValue } }
    }

    public var fault: SimulatorFault {
        get { self.state.withLock { $0.fault } }
        set { self.state.withLock { $0.fault = newValue } }
    }

    /// A fault for the business endpoints only (`get_token` keeps working), applied after `fault`.
    public var businessFault: SimulatorFault {
        get { self.state.withLock { $0.businessFault } }
        set { self.state.withLock { $0.businessFault = newValue } }
    }

    /// Times (Unix seconds) of every `get_token` request that reached the simulator, optionally for one appid.
    public func tokenRequestTimes(appid: String? = nil) -> [Double] {
        self.state.withLock { state in
            state.tokenRequests.filter { appid == nil || $0.appid == appid }.map(\.at)
        }
    }

    public var tokenRequestCount: Int { self.state.withLock { $0.tokenRequests.count } }

    public var businessRequestCount: Int { self.state.withLock { $0.businessRequests } }

    /// Connections accepted so far: how well a client reuses keep-alive connections.
    public var connectionCount: Int { self.state.withLock { $0.connections } }

    /// Some other party calls `get_token` for `appid`: the broker's token stops working.
    public func issueTokenElsewhere(appid: String) {
        self.state.withLock { _ = $0.issueToken(appid: appid, now: Self.now()) }
    }

    /// The appid `token` is the current, unexpired token of, if any.
    public func appid(ofToken token: String) -> String? {
        self.state.withLock { $0.appid(forToken: token, now: Self.now()) }
    }

    /// Whether `token` is the current, unexpired token of some appid.
    public func isCurrent(token: String) -> Bool {
        self.state.withLock { $0.appid(forToken: token, now: Self.now()) != nil }
    }

    // MARK: Lifecycle

    /// Binds 127.0.0.1:`port` (0 picks a free port) and serves until `stop()`. Returns the port.
    public func start(port: Int = 0) async throws -> Int {
        let channel = try await ServerBootstrap(group: NIOSingletons.posixEventLoopGroup)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(
                        wrappingChannelSynchronously: channel
                    )
                }
            }
        // Accepting runs on the listener's event loop, and each connection on its own: in a test
        // process whose two cooperative threads are busy, new connections, answers and their recorded
        // arrival times still come on time.
        let task = Task(executorPreference: EventLoopTaskExecutor(channel.channel.eventLoop)) {
            _ = try? await channel.executeThenClose { connections in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in connections {
                        group.addTask(executorPreference: EventLoopTaskExecutor(connection.channel.eventLoop)) {
                            await self.serve(connection)
                        }
                    }
                }
            }
        }
        self.server.withLock { $0 = (channel.channel, task) }
        return channel.channel.localAddress?.port ?? port
    }

    /// Stops listening and drops every connection, including hung ones.
    public func stop() async {
        let (channel, task) = self.server.withLock { server in
            defer { server = (nil, nil) }
            return server
        }
        try? await channel?.close()
        task?.cancel()
        await task?.value
    }

    // MARK: HTTP

    private func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        self.state.withLock { $0.connections += 1 }
        try? await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            var body = ByteBuffer()
            for try await part in inbound {
                switch part {
                case .head(let requestHead):
                    head = requestHead
                    body.clear()
                case .body(var chunk):
                    body.writeBuffer(&chunk)
                case .end:
                    guard let requestHead = head else { continue }
                    let reply = try await self.reply(to: requestHead, body: body)
                    var headers = HTTPHeaders()
                    headers.add(name: "content-type", value: reply.contentType)
                    headers.add(name: "content-length", value: String(reply.body.count))
                    try await outbound.write(.head(HTTPResponseHead(version: requestHead.version, status: reply.status, headers: headers)))
                    try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: reply.body))))
                    try await outbound.write(.end(nil))
                }
            }
        }
    }

    struct Reply {
        var status: HTTPResponseStatus = .ok
        var contentType = "application/json"
        var body: [UInt8]

        static func json(_ value: JSONValue) -> Reply { Reply(body: JSONWriter.bytes(value)) }

        static func error(_ code: String, _ message: String) -> Reply {
            .json(["ret_code": .string(code), "ret_msg": .string(message)])
        }
    }

    private func reply(to head: HTTPRequestHead, body: ByteBuffer) async throws -> Reply {
        let (path, query) = Self.split(head.uri)
        if path == "/_simulator/fault" { return self.setFault(query) }
        // Counted before any fault applies: tests count what reached the upstream.
        if path == "/api/get_token" {
            let now = Self.now()
            self.state.withLock { $0.tokenRequests.append((query["appid"] ?? "", now)) }
        } else if path.hasPrefix("/marketing-open/") || path.hasPrefix("/api/") {
            self.state.withLock { $0.businessRequests += 1 }
        }
        if let faulted = try await self.apply(self.fault) { return faulted }
        switch (head.method, path) {
        case (.GET, "/api/get_token"):
            return self.getToken(query)
        case (.POST, "/marketing-open/api/5/marketing_subject_catalog/query_page"):
            if let faulted = try await self.apply(self.businessFault) { return faulted }
            return self.business(head, body) { filter, pageNo, pageSize in
                MarketingDataSet.catalogPage(filter: filter, pageNo: pageNo, pageSize: pageSize)
            }
        case (.POST, "/marketing-open/api/5/marketing_subject/query_page"):
            if let faulted = try await self.apply(self.businessFault) { return faulted }
            return self.business(head, body) { filter, pageNo, pageSize in
                MarketingDataSet.subjectPage(filter: filter, pageNo: pageNo, pageSize: pageSize)
            }
        case (_, _) where path.hasPrefix("/api/"):
            if let faulted = try await self.apply(self.businessFault) { return faulted }
            return self.echo(head, path: path, body: body)
        default:
            return Reply(status: .notFound, contentType: "text/plain", body: Array("no such endpoint".utf8))
        }
    }

    /// Any other `/api/…` endpoint: checks the token as Sobot does, then answers with what it received
    /// (method, path, raw query, body, `language`, `content-type`, how many `token` headers came), so
    /// tests see exactly what the broker forwarded. Never the token itself.
    private func echo(_ head: HTTPRequestHead, path: String, body: ByteBuffer) -> Reply {
        let tokens = head.headers["token"]
        let token = tokens.first ?? ""
        guard !token.isEmpty else { return .error("900001", "token empty") }
        guard self.state.withLock({ $0.appid(forToken: token, now: Self.now()) != nil }) else {
            return .error("900002", "token expired, get a new one")
        }
        let bytes = Array(buffer: body)
        let received: JSONValue = (try? JSONParser.parse(bytes)) ?? .string(String(decoding: bytes, as: UTF8.self))
        let rawQuery = head.uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
        var echo: [String: JSONValue] = [
            "method": .string(head.method.rawValue),
            "path": .string(path),
            "query": .string(rawQuery),
            "body": bytes.isEmpty ? .null : received,
            "token_headers": .integer(Int64(tokens.count)),
        ]
        if let language = head.headers.first(name: "language") { echo["language"] = .string(language) }
        if let contentType = head.headers.first(name: "content-type") { echo["content_type"] = .string(contentType) }
        return .json(["ret_code": "000000", "ret_msg": "Success", "item": .object(echo)])
    }

    /// The reply a fault forces, or nil to answer normally (after any added latency).
    private func apply(_ fault: SimulatorFault) async throws -> Reply? {
        switch fault {
        case .none, .expiresIn, .tokenLength, .token:
            return nil
        case .latency(let milliseconds):
            try await Task.sleep(for: .milliseconds(milliseconds))
            return nil
        case .hang:
            try await Task.sleep(for: .seconds(86_400))
            return nil
        case .httpStatus(let code):
            return Reply(status: HTTPResponseStatus(statusCode: code), contentType: "text/plain", body: Array("simulated failure".utf8))
        case .garbage:
            return Reply(contentType: "text/html", body: Array("<html>gateway says hello</html>".utf8))
        case .returnCode(let code):
            return .error(code, SobotReturnCode.meaning(of: code))
        }
    }

    private func getToken(_ query: [String: String]) -> Reply {
        let now = Self.now()
        let appid = query["appid"] ?? ""
        return self.state.withLock { state in
            guard let appKey = state.appKeys[appid] else { return .error("900004", "no API configuration for the company") }
            guard let createTime = query["create_time"].flatMap(Int64.init),
                query["sign"] == SobotSignature.sign(appid: appid, createTime: createTime, appKey: appKey)
            else { return .error("900003", "signature error") }
            var expiresIn = JSONValue.string(Self.wholeSeconds(state.tokenTTL))
            let token: String
            switch state.fault {
            case .expiresIn(let value):
                expiresIn = value
                token = state.issueToken(appid: appid, now: now)
            case .tokenLength(let length):
                token = state.issueToken(appid: appid, now: now, value: String(repeating: "A", count: length))
            case .token(let value):
                token = state.issueToken(appid: appid, now: now, value: value)
            default:
                token = state.issueToken(appid: appid, now: now)
            }
            return .json([
                "item": ["token": .string(token), "expires_in": expiresIn],
                "ret_code": "000000",
                "ret_msg": "Success",
            ])
        }
    }

    private func business(
        _ head: HTTPRequestHead,
        _ body: ByteBuffer,
        page: ([String: JSONValue], Int, Int) -> JSONValue
    ) -> Reply {
        let token = head.headers.first(name: "token") ?? ""
        let valid = self.state.withLock { $0.appid(forToken: token, now: Self.now()) != nil }
        guard !token.isEmpty else { return .error("900001", "token empty") }
        guard valid else { return .error("900002", "token expired, get a new one") }
        let request: [String: JSONValue]
        if body.readableBytes == 0 {
            request = [:]
        } else {
            guard let parsed = try? JSONParser.parse(Array(buffer: body)), case .object(let members) = parsed else {
                return .error("999994", "parameter exception")
            }
            request = members
        }
        let pageNo = request["page_no"]?.integerValue ?? 1
        let pageSize = request["page_size"]?.integerValue ?? 15
        // page_no is bounded too: the page's offset, (page_no - 1) * page_size, must not overflow.
        guard (1...100).contains(pageSize), (1...Int64(Int32.max)).contains(pageNo) else { return .error("999994", "parameter exception") }
        return .json(page(request, Int(pageNo), Int(pageSize)))
    }

    /// Seconds as Sobot writes them, a whole number; a lifetime no Int64 holds is written as it is.
    static func wholeSeconds(_ seconds: Double) -> String {
        Int64(exactly: seconds.rounded(.down)).map(String.init) ?? "\(seconds)"
    }

    private func setFault(_ query: [String: String]) -> Reply {
        guard let fault = query["fault"].flatMap(SimulatorFault.init(name:)) else {
            return .error(
                "999994",
                "fault must be none, http<100-599>, hang, garbage, ret:<code>, latency:<ms>, expires_in:<json>, token_length:<bytes> or token:<text>"
            )
        }
        self.fault = fault
        return .json(["ret_code": "000000", "ret_msg": .string("fault set")])
    }

    static func split(_ uri: String) -> (path: String, query: [String: String]) {
        let parts = uri.split(separator: "?", maxSplits: 1)
        var query: [String: String] = [:]
        if parts.count == 2 {
            for pair in parts[1].split(separator: "&") {
                let field = pair.split(separator: "=", maxSplits: 1)
                query[Self.unescape(field[0])] = field.count == 2 ? Self.unescape(field[1]) : ""
            }
        }
        return (parts.first.map(String.init) ?? "/", query)
    }

    private static func unescape(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let decoded = Hex.decode(String(decoding: [high, low], as: UTF8.self))
            {
                bytes.append(contentsOf: decoded)
            } else {
                bytes.append(byte == UInt8(ascii: "+") ? 0x20 : byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func now() -> Double { SystemClock().unixNow() }
}
