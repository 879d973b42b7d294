import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Talks to Sobot's open API over one shared, pooled `HTTPClient`.
///
/// Every call has a total deadline on top of the client's connect and read timeouts. Nothing this
/// type logs or throws contains the token, the sign or the app key.
public final class SobotClient: Sendable {
    public struct Timeouts: Sendable {
        public var connect: Double
        public var read: Double
        /// Upper bound for the whole call, body included.
        public var total: Double
        /// Concurrent HTTP/1 connections per upstream host (each region is one host).
        public var connectionsPerHost: Int

        public init(connect: Double = 5, read: Double = 10, total: Double = 15, connectionsPerHost: Int = 64) {
            self.connect = connect
            self.read = read
            self.total = total
            self.connectionsPerHost = connectionsPerHost
        }
    }

    /// Replies larger than this are refused as unreadable.
    static let maximumReplySize = 8 << 20

    public let regions: RegionDirectory
    public let timeouts: Timeouts
    let http: HTTPClient
    private let logger: Logger
    private let isShutDown = Mutex(false)

    public init(regions: RegionDirectory, timeouts: Timeouts = Timeouts(), logger: Logger) {
        self.regions = regions
        self.timeouts = timeouts
        self.logger = logger
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(
            connect: .milliseconds(Int64(timeouts.connect * 1000)),
            read: .milliseconds(Int64(timeouts.read * 1000))
        )
        configuration.redirectConfiguration = .disallow
        // AsyncHTTPClient's default of 8 would queue a region's on-demand fetches behind each other.
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: timeouts.connectionsPerHost)
        self.http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// Releases the connection pool. Call once, when the broker stops.
    public func shutdown() async throws {
        self.isShutDown.withLock { $0 = true }
        try await self.http.shutdown()
    }

    /// A client released without `shutdown()` (an error path) still releases its pool: the HTTP
    /// client lives on in a task until it is shut down, instead of being torn down with open connections.
    deinit {
        guard !self.isShutDown.withLock({ $0 }) else { return }
        let http = self.http
        Task.detached { try? await http.shutdown() }
    }

    /// `GET /api/get_token`: issues a NEW token for `appid` (and may invalidate the previous one).
    public func fetchToken(region: String, appid: String, appKey: String, createTime: Int64) async throws(SobotError) -> IssuedToken {
        let sign = SobotSignature.sign(appid: appid, createTime: createTime, appKey: appKey)
        let query = "appid=\(SobotQuery.escape(appid))&create_time=\(createTime)&sign=\(sign)"
        let reply = try await self.send(region: region, path: "/api/get_token?\(query)", method: .GET, token: nil, body: nil)
        return try IssuedToken(reply: reply)
    }

    /// `POST` a JSON body to a business endpoint with the `token` header. Returns the whole reply
    /// object once its `ret_code` is `000000`.
    public func post(region: String, path: String, token: String, body: JSONValue) async throws(SobotError) -> JSONValue {
        try await self.send(region: region, path: path, method: .POST, token: token, body: body)
    }

    private func send(
        region: String,
        path: String,
        method: HTTPMethod,
        token: String?,
        body: JSONValue?
    ) async throws(SobotError) -> JSONValue {
        guard let base = self.regions.baseURL(for: region) else {
            throw .unavailable("no base URL for region \"\(region)\"")
        }
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "accept", value: "application/json")
        if let token {
            // AsyncHTTPClient traps on a header it cannot send; decoding already refuses such tokens.
            guard token.isEmpty || IssuedToken.isWellFormed(token) else { throw .unavailable("the token is not a valid header value") }
            request.headers.add(name: "token", value: token)
        }
        if let body {
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: JSONWriter.bytes(body)))
        }
        let endpoint = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        let http = self.http
        let prepared = request
        let started = ContinuousClock.now
        let outcome: (status: UInt, body: ByteBuffer)
        do {
            outcome = try await withDeadline(seconds: self.timeouts.total) {
                let response = try await http.execute(prepared, timeout: .seconds(3600))
                let bytes = try await response.body.collect(upTo: Self.maximumReplySize)
                return (response.status.code, bytes)
            }
        } catch {
            let reason = Self.describe(error)
            self.logger.debug("sobot call failed", metadata: ["region": "\(region)", "endpoint": "\(endpoint)", "reason": "\(reason)"])
            BrokerMetrics.recordUpstreamCall(region: region, endpoint: endpoint, outcome: "unavailable", duration: ContinuousClock.now - started)
            throw .unavailable(reason)
        }
        self.logger.debug(
            "sobot call",
            metadata: [
                "region": "\(region)", "endpoint": "\(endpoint)", "status": "\(outcome.status)",
                "ms": "\((ContinuousClock.now - started).milliseconds)",
            ]
        )
        do throws(SobotError) {
            let reply = try SobotReply.interpret(status: outcome.status, body: Array(buffer: outcome.body))
            BrokerMetrics.recordUpstreamCall(region: region, endpoint: endpoint, outcome: "ok", duration: ContinuousClock.now - started)
            return reply
        } catch {
            let kind = if case .rejected = error { "rejected" } else { "unavailable" }
            BrokerMetrics.recordUpstreamCall(region: region, endpoint: endpoint, outcome: kind, duration: ContinuousClock.now - started)
            throw error
        }
    }

    /// A short, secret-free reason for a transport failure (never the URL: it carries the sign).
    static func describe(_ error: any Error) -> String {
        switch error {
        case is DeadlineExceeded: return "timed out"
        case let error as HTTPClientError:
            switch error {
            case .connectTimeout: return "connect timed out"
            case .readTimeout: return "read timed out"
            case .deadlineExceeded: return "timed out"
            case .remoteConnectionClosed: return "connection closed by upstream"
            default: return "HTTP client error"
            }
        case let error as NIOConnectionError:
            return "cannot connect (\(error.connectionErrors.first.map { "\($0.error)" } ?? "no address"))"
        case let error as IOError:
            return "I/O error (\(error.description))"
        case is CancellationError:
            return "cancelled"
        default:
            return "network error (\(type(of: error)))"
        }
    }
}
