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
/// TCP ports. Each connection is served by a `ProxyConnectionHandler` on its event loop: the common
/// case (`ProxyFastPath`) never leaves the loop; everything else is answered by `ProxyRouter`.
///
/// Bounds: connections (past `maximumConnections` a new one is closed at once), header bytes (431),
/// body bytes (413), and time without a whole request (`ProxyConnectionTimer`). A Unix socket is
/// created at mode 0600 (0660 with a group) and its callers are identified by `SO_PEERCRED`; a TCP
/// caller must present a client key (`Authorization: Bearer KEY`), or gets 401.
///
/// As a `Service`, `run()` serves until graceful shutdown, then stops accepting and reading, lets
/// requests in progress finish (their upstream calls are bounded by their deadline) and removes its
/// socket files.
public final class HTTPProxyServer: Service, Sendable {
    public struct Limits: Sendable {
        public var maximumConnections = 1024
        public var maximumBodySize = SobotCall.maximumBodySize
        /// Bytes of request line and headers in all.
        public var maximumHeaderBytes = 32 << 10
        /// How long a connection may wait for the next whole request head.
        public var waitLimit: TimeAmount = .seconds(30)
        /// How long a request's body may take to arrive after its head.
        public var bodyLimit: TimeAmount = .seconds(30)
        /// How long a graceful shutdown waits for requests in progress (an upstream call's own deadline
        /// is 15 s) before it closes their connections.
        public var drainLimit: TimeAmount = .seconds(20)

        public init() {}
    }

    /// Who may use the proxy's TCP ports: the client keys, as loaded now.
    public typealias KeyCheck = @Sendable (_ presented: String) -> (any RemoteCallerGrant)?

    private struct Listener: Sendable {
        let address: ProxyListenAddress
        let channel: Channel
        let socketFile: UnixListener?
    }

    private let listeners: [Listener]
    private let connections: ProxyConnections
    private let limits: Limits
    private let logger: Logger

    private init(listeners: [Listener], connections: ProxyConnections, limits: Limits, logger: Logger) {
        self.listeners = listeners
        self.connections = connections
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
        fastPath: ProxyFastPath? = nil,
        keys: @escaping KeyCheck,
        limits: Limits = Limits(),
        logger: Logger
    ) async throws -> HTTPProxyServer {
        let responder = ProxyResponder(router: router, fastPath: fastPath, keys: keys, limits: limits)
        let connections = ProxyConnections(limit: limits.maximumConnections)
        var listeners: [Listener] = []
        do {
            for address in addresses {
                listeners.append(
                    try await Self.listen(on: address, mode: socketMode, group: socketGroup, responder: responder, connections: connections, limits: limits)
                )
            }
        } catch {
            for listener in listeners {
                try? await listener.channel.close()
                listener.socketFile?.removeSocketFile()
            }
            throw error
        }
        return HTTPProxyServer(listeners: listeners, connections: connections, limits: limits, logger: logger)
    }

    private static func listen(
        on address: ProxyListenAddress,
        mode: mode_t,
        group: gid_t?,
        responder: ProxyResponder,
        connections: ProxyConnections,
        limits: Limits
    ) async throws -> Listener {
        let bootstrap = ServerBootstrap(group: NIOSingletons.posixEventLoopGroup)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.allowRemoteHalfClosure, value: false)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                guard connections.admit(channel) else { return channel.close() }
                return Self.peerCredentials(of: channel).flatMapThrowing { peer in
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.configureHTTPServerPipeline(withErrorHandling: true)
                    try pipeline.addHandler(ProxyConnectionTimer(waitLimit: limits.waitLimit, bodyLimit: limits.bodyLimit))
                    try pipeline.addHandler(ProxyConnectionHandler(responder: responder, peer: peer))
                }
            }
        switch address {
        case .tcp(let host, let port):
            let channel = try await bootstrap.serverChannelOption(.socketOption(.so_reuseaddr), value: 1).bind(host: host, port: port).get()
            return Listener(address: address, channel: channel, socketFile: nil)
        case .unix(let path):
            let file = try UnixListener.bind(path: path, mode: mode, group: group)
            do {
                let channel = try await bootstrap.withBoundSocket(file.descriptor).get()
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
        self.listeners[index].channel.localAddress?.port
    }

    /// Serves until graceful shutdown; then stops accepting, stops reading further requests, waits
    /// (at most `drainLimit`) for the requests in progress, and removes the socket files.
    public func run() async throws {
        self.logger.info("HTTP proxy listening", metadata: ["addresses": "\(self.listeners.map { "\($0.address)" }.joined(separator: ", "))"])
        try? await gracefulShutdown()
        for listener in self.listeners {
            try? await listener.channel.close()
        }
        await self.connections.drain(within: self.limits.drainLimit)
        for listener in self.listeners { listener.socketFile?.removeSocketFile() }
    }
}
