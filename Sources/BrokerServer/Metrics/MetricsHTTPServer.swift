import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// `serve --metrics-listen HOST:PORT`: Prometheus text at `GET /metrics` over plain HTTP, for a
/// scraper on the same host, and probes for orchestrators: `GET /healthz` (200 while the process
/// serves HTTP at all) and `GET /readyz` (200 once the socket listens with every stored token loaded and
/// while the store answers; 503 with the reason otherwise). Nothing else is served.
///
/// Any local user can connect, so what a connection can hold is bounded (`Limits`): past
/// `maximumConnections` open ones a new connection is closed at once, a connection gets
/// `timeout` to send each request (and is closed when idle that long), and a request may not
/// exceed `maximumRequestBytes`. A flood of idle connections costs the daemon at most
/// `maximumConnections` descriptors, and the socket's callers never notice it.
public struct MetricsHTTPServer: Service {
    public struct Limits: Sendable {
        /// Open connections beyond which new ones are closed at once (`--metrics-max-connections`).
        public var maximumConnections = 64
        /// Seconds a connection may take to send a request, counted from its opening or its
        /// previous answer (`--metrics-timeout`).
        public var timeout: Double = 10
        /// Bytes a client may send before it is answered: the request head and anything else.
        public var maximumRequestBytes = 16 << 10

        public init() {}
    }

    let address: MetricsListenAddress
    let limits: Limits
    let exporter: MetricsExporter
    /// nil when ready, else why not (one line).
    let readiness: @Sendable () async -> String?
    let logger: Logger

    public init(
        address: MetricsListenAddress,
        limits: Limits = Limits(),
        exporter: MetricsExporter,
        readiness: @escaping @Sendable () async -> String? = { nil },
        logger: Logger
    ) {
        self.address = address
        self.limits = limits
        self.exporter = exporter
        self.readiness = readiness
        self.logger = logger
    }

    /// A new connection: served, or refused because `maximumConnections` are open.
    private enum Accepted: Sendable {
        case served(NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>)
        case refused(any Channel)
    }

    public func run() async throws {
        let open = ConnectionCount(limit: self.limits.maximumConnections)
        let limits = self.limits
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: self.address.host, port: self.address.port) { channel in
                channel.eventLoop.makeCompletedFuture { () throws -> Accepted in
                    guard open.take() else { return .refused(channel) }
                    channel.closeFuture.whenComplete { _ in open.give() }
                    try Self.configure(channel.pipeline.syncOperations, limits: limits)
                    return .served(try NIOAsyncChannel(wrappingChannelSynchronously: channel))
                }
            }
        self.logger.info(
            "metrics listening",
            metadata: ["address": "\(self.address.host):\(self.address.port)", "max_connections": "\(limits.maximumConnections)"]
        )
        try await withGracefulShutdownHandler {
            try await server.executeThenClose { connections in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in connections {
                        switch connection {
                        case .served(let connection): group.addTask { await self.serve(connection) }
                        case .refused(let channel): channel.close(promise: nil)
                        }
                    }
                    // Shutting down: open connections (idle keep-alives above all) would hold it up
                    // until their timeout.
                    group.cancelAll()
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
    }

    /// The guard first, then HTTP/1 with header limits well below NIO's 80 KiB defaults.
    private static func configure(_ pipeline: ChannelPipeline.SynchronousOperations, limits: Limits) throws {
        let timeout = TimeAmount.milliseconds(Int64((limits.timeout * 1000).rounded()))
        try pipeline.addHandler(MetricsConnectionGuard(timeout: timeout, maximumRequestBytes: limits.maximumRequestBytes))
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        decoderLimits.maxHeaderFieldSize = limits.maximumRequestBytes
        decoderLimits.maxHeaderListSize = limits.maximumRequestBytes
        decoderLimits.maxHeaderFieldCount = 100
        try pipeline.configureHTTPServerPipeline(withEncoderConfiguration: .init(), withDecoderLimitConfiguration: decoderLimits)
    }

    private func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        try? await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            for try await part in inbound {
                switch part {
                case .head(let requestHead): head = requestHead
                case .body: continue
                case .end:
                    guard let requestHead = head else { continue }
                    let (status, contentType, body) = await self.answer(requestHead)
                    var headers = HTTPHeaders()
                    headers.add(name: "content-type", value: contentType)
                    headers.add(name: "content-length", value: String(body.utf8.count))
                    try await outbound.write(.head(HTTPResponseHead(version: requestHead.version, status: status, headers: headers)))
                    try await outbound.write(.body(.byteBuffer(ByteBuffer(string: body))))
                    try await outbound.write(.end(nil))
                    if !requestHead.isKeepAlive { return }
                }
            }
        }
    }
}

extension MetricsHTTPServer {
    private func answer(_ head: HTTPRequestHead) async -> (HTTPResponseStatus, String, String) {
        guard head.method == .GET else { return (.methodNotAllowed, "text/plain", "method not allowed\n") }
        switch head.uri.split(separator: "?", omittingEmptySubsequences: false).first {
        case "/metrics":
            return (.ok, "text/plain; version=0.0.4", await self.exporter.render())
        case "/healthz":
            return (.ok, "text/plain", "ok\n")
        case "/readyz":
            if let reason = await self.readiness() { return (.serviceUnavailable, "text/plain", "not ready: \(reason)\n") }
            return (.ok, "text/plain", "ready\n")
        default:
            return (.notFound, "text/plain", "not found\n")
        }
    }
}

/// How many metrics connections are open, against the limit.
private final class ConnectionCount: Sendable {
    private let open = Atomic<Int>(0)
    private let limit: Int

    init(limit: Int) {
        self.limit = limit
    }

    /// Counts one more connection, unless `limit` are open.
    func take() -> Bool {
        guard self.open.add(1, ordering: .relaxed).newValue > self.limit else { return true }
        self.open.subtract(1, ordering: .relaxed)
        return false
    }

    func give() {
        self.open.subtract(1, ordering: .relaxed)
    }
}
