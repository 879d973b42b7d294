#if canImport(Glibc)
import Glibc
#endif
import BrokerCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// `serve --http-proxy`: HTTP/1.1 with keep-alive on SwiftNIO's codec, on Unix sockets and loopback
/// TCP ports, answering each request through `ProxyRouter`.
///
/// Bounds: connections (past `maximumConnections` a new one is closed at once), header bytes (431),
/// body bytes (413), and time without a whole request (`ProxyConnectionTimer`). A Unix socket is
/// created at mode 0600 (0660 with a group) and its callers are identified by `SO_PEERCRED`; a TCP
/// caller must present a client key (`Authorization: Bearer KEY`), or gets 401.
///
/// As a `Service`, `run()` serves until graceful shutdown, then stops accepting and reading, lets
/// requests in progress finish (their upstream calls are bounded) and removes its socket files.
public final class HTTPProxyServer: Service {
    public struct Limits: Sendable {
        public var maximumConnections = 1024
        public var maximumBodySize = SobotCall.maximumBodySize
        /// Bytes of request line and headers in all.
        public var maximumHeaderBytes = 32 << 10
        /// How long a connection may wait for the next whole request head.
        public var waitLimit: TimeAmount = .seconds(30)
        /// How long a request's body may take to arrive after its head.
        public var bodyLimit: TimeAmount = .seconds(30)

        public init() {}
    }

    /// Who may use the proxy's TCP ports: the client keys, as loaded now.
    public typealias KeyCheck = @Sendable (_ presented: String) -> (any RemoteCallerGrant)?

    private typealias Connection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>

    private struct Listener {
        let address: ProxyListenAddress
        let channel: NIOAsyncChannel<(Connection, PeerCredentials?), Never>
        let socketFile: UnixListener?
    }

    private let listeners: [Listener]
    private let router: ProxyRouter
    private let keys: KeyCheck
    private let limits: Limits
    private let logger: Logger
    private let open = Atomic<Int>(0)

    private init(listeners: [Listener], router: ProxyRouter, keys: @escaping KeyCheck, limits: Limits, logger: Logger) {
        self.listeners = listeners
        self.router = router
        self.keys = keys
        self.limits = limits
        self.logger = logger
    }

    /// Binds every address before anything is served, so a taken port or path fails the start with
    /// one line. A Unix socket gets `socketMode`, or 0660 and `socketGroup` when one is given.
    static func bind(
        _ addresses: [ProxyListenAddress],
        socketMode: mode_t = 0o600,
        socketGroup: gid_t? = nil,
        router: ProxyRouter,
        keys: @escaping KeyCheck,
        limits: Limits = Limits(),
        logger: Logger
    ) async throws -> HTTPProxyServer {
        var listeners: [Listener] = []
        do {
            for address in addresses {
                listeners.append(try await Self.listen(on: address, mode: socketMode, group: socketGroup, limits: limits))
            }
        } catch {
            for listener in listeners {
                try? await listener.channel.channel.close()
                listener.socketFile?.removeSocketFile()
            }
            throw error
        }
        return HTTPProxyServer(listeners: listeners, router: router, keys: keys, limits: limits, logger: logger)
    }

    private static func listen(on address: ProxyListenAddress, mode: mode_t, group: gid_t?, limits: Limits) async throws -> Listener {
        let bootstrap = ServerBootstrap(group: NIOSingletons.posixEventLoopGroup)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
        let initialize: @Sendable (Channel) -> EventLoopFuture<(Connection, PeerCredentials?)> = { channel in
            Self.peerCredentials(of: channel).flatMapThrowing { peer in
                try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                try channel.pipeline.syncOperations.addHandler(ProxyConnectionTimer(waitLimit: limits.waitLimit, bodyLimit: limits.bodyLimit))
                return (try Connection(wrappingChannelSynchronously: channel), peer)
            }
        }
        switch address {
        case .tcp(let host, let port):
            let channel = try await bootstrap.serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: host, port: port, childChannelInitializer: initialize)
            return Listener(address: address, channel: channel, socketFile: nil)
        case .unix(let path):
            let file = try UnixListener.bind(path: path, mode: mode, group: group)
            do {
                let channel = try await bootstrap.bind(file.descriptor, childChannelInitializer: initialize)
                return Listener(address: address, channel: channel, socketFile: file)
            } catch {
                close(file.descriptor)
                file.removeSocketFile()
                throw error
            }
        }
    }

    /// `SO_PEERCRED` of a Unix-socket connection; nil for TCP.
    private static func peerCredentials(of channel: Channel) -> EventLoopFuture<PeerCredentials?> {
        guard case .unixDomainSocket = channel.localAddress, let provider = channel as? SocketOptionProvider else {
            return channel.eventLoop.makeSucceededFuture(nil)
        }
        let raw: EventLoopFuture<PeerCredentialsLayout> = provider.unsafeGetSocketOption(
            level: NIOBSDSocket.OptionLevel.socket,
            name: NIOBSDSocket.Option(rawValue: SO_PEERCRED)
        )
        // NIO reads fixed-size options only, into zeroed memory that hides the answer's length: room for
        // 64 groups, of which the zeros are dropped (so a supplementary group 0 is not seen; only root's
        // processes have it, and root is the owner anyway). A peer in more groups than that gets an
        // error here, and group rules then see its primary group only: both only ever grant less.
        let groups: EventLoopFuture<SIMD64<UInt32>> = provider.unsafeGetSocketOption(
            level: NIOBSDSocket.OptionLevel.socket,
            name: NIOBSDSocket.Option(rawValue: PeerCredentials.peerGroupsOption)
        )
        let supplementary = groups.map { list in (0..<64).map { list[$0] }.filter { $0 != 0 } }.recover { _ in [] }
        return raw.and(supplementary).map { credentials, groups in
            PeerCredentials(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid, supplementaryGroups: groups)
        }
    }

    /// The layout of Linux's `struct ucred`.
    private struct PeerCredentialsLayout: Sendable {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    /// The addresses listened on, as given.
    public var addresses: [ProxyListenAddress] { self.listeners.map(\.address) }

    /// The TCP port actually bound at `index` (for port 0 in tests).
    public func boundPort(at index: Int) -> Int? {
        self.listeners[index].channel.channel.localAddress?.port
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            for listener in self.listeners {
                group.addTask { await self.accept(on: listener) }
            }
        }
    }

    private func accept(on listener: Listener) async {
        // Accepting stops at graceful shutdown: the server channel closes and its sequence ends;
        // the group then waits for the connections, which stop reading at the same moment.
        await withGracefulShutdownHandler {
            try? await listener.channel.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await (connection, peer) in inbound {
                        guard self.open.add(1, ordering: .relaxed).newValue <= self.limits.maximumConnections else {
                            self.open.subtract(1, ordering: .relaxed)
                            try? await connection.channel.close()
                            continue
                        }
                        group.addTask {
                            defer { self.open.subtract(1, ordering: .relaxed) }
                            await withGracefulShutdownHandler {
                                await self.serve(connection, peer: peer)
                            } onGracefulShutdown: {
                                // No further request is read; the one in progress is still answered.
                                connection.channel.close(mode: .input, promise: nil)
                            }
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            listener.channel.channel.close(promise: nil)
        }
        listener.socketFile?.removeSocketFile()
    }

    /// Answers one connection's requests in turn until it closes, misbehaves, or asks to close.
    private func serve(_ connection: Connection, peer: PeerCredentials?) async {
        try? await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            var body: ByteBuffer?
            for try await part in inbound {
                switch part {
                case .head(let requestHead):
                    (head, body) = (requestHead, nil)
                    // Refused on its head alone: answered at once, and the connection closed rather
                    // than the rest of the request read.
                    if let refusal = self.refusal(of: requestHead) {
                        try await Self.write(refusal, version: requestHead.version, keepAlive: false, to: outbound)
                        return
                    }
                case .body(var chunk):
                    guard let requestHead = head else { continue }
                    if (body?.readableBytes ?? 0) + chunk.readableBytes > self.limits.maximumBodySize {
                        try await Self.write(Self.bodyTooLarge(self.limits), version: requestHead.version, keepAlive: false, to: outbound)
                        return
                    }
                    if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
                case .end:
                    guard let requestHead = head else { continue }
                    let request = ProxyRequest(method: requestHead.method, uri: requestHead.uri, headers: requestHead.headers, body: body)
                    let response = await self.respond(to: request, peer: peer)
                    try await Self.write(response, version: requestHead.version, keepAlive: requestHead.isKeepAlive, to: outbound)
                    guard requestHead.isKeepAlive else { return }
                    (head, body) = (nil, nil)
                }
            }
        }
    }

    /// A refusal decided from the head alone: headers too large, or a declared body too large.
    private func refusal(of head: HTTPRequestHead) -> ProxyResponse? {
        let headerBytes = head.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 } + head.uri.utf8.count
        if headerBytes > self.limits.maximumHeaderBytes {
            return .error(
                code: ErrorCode.invalidRequest,
                message: "invalid request: the request line and headers are larger than \(self.limits.maximumHeaderBytes >> 10) KiB",
                status: .requestHeaderFieldsTooLarge
            )
        }
        if let declared = head.headers.first(name: "content-length"), let length = Int(declared), length > self.limits.maximumBodySize {
            return Self.bodyTooLarge(self.limits)
        }
        return nil
    }

    private static func bodyTooLarge(_ limits: Limits) -> ProxyResponse {
        .error(
            code: ErrorCode.invalidRequest,
            message: "invalid request: the body is larger than \(limits.maximumBodySize >> 20) MiB",
            status: .payloadTooLarge
        )
    }

    /// Who is calling decides how: a local caller by its access rules, a TCP caller by its key.
    private func respond(to request: ProxyRequest, peer: PeerCredentials?) async -> ProxyResponse {
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        if path == "/_broker/health" {
            return await self.router.respond(to: request, context: CallContext(peer: peer ?? PeerCredentials(pid: 0, uid: UInt32.max, gid: UInt32.max)))
        }
        if let peer { return await self.router.respond(to: request, context: CallContext(peer: peer)) }
        guard let presented = Self.bearer(request.headers), let grant = self.keys(presented) else {
            return .error(
                code: ErrorCode.permissionDenied,
                message: "permission denied: a client key is required over TCP (Authorization: Bearer KEY)",
                status: .unauthorized
            )
        }
        return await self.router.respond(to: request, context: CallContext(remote: grant))
    }

    private static func bearer(_ headers: HTTPHeaders) -> String? {
        guard let value = headers.first(name: "authorization"), value.count > 7, value.prefix(7).lowercased() == "bearer " else { return nil }
        return String(value.dropFirst(7))
    }

    private static func write(
        _ response: ProxyResponse,
        version: HTTPVersion,
        keepAlive: Bool,
        to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: response.contentType)
        headers.add(name: "content-length", value: String(response.body.count))
        if !keepAlive { headers.add(name: "connection", value: "close") }
        try await outbound.write(.head(HTTPResponseHead(version: version, status: response.status, headers: headers)))
        try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: response.body))))
        try await outbound.write(.end(nil))
    }
}
