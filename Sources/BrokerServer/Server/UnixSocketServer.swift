#if canImport(Glibc)
import Glibc
#endif
import BrokerCore
import Logging
import Metrics
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// Something other than a socket occupies the socket path.
public struct SocketPathError: Error, CustomStringConvertible {
    public let path: String
    public var description: String { "\(self.path) exists and is not a socket; refusing to replace it" }
}

/// The JSON-RPC endpoint: a Unix socket, one JSON message per `\n`-terminated line each way.
///
/// The socket appears at its path already at mode 0600: it is bound inside a private (0700) staging
/// directory, chmodded, then renamed into place. On graceful shutdown it stops accepting, lets each
/// connection finish the requests it already sent (bounded by `drainTimeout`), closes them, and
/// removes the socket file.
public final class UnixSocketServer: Service, Sendable {
    public struct Configuration: Sendable {
        public var socketPath: String
        public var maximumLineLength = 1 << 20
        public var drainTimeout: Double = 10
        public var socketMode: mode_t = 0o600
        /// Event-loop threads for connections; nil shares NIO's process-wide group (one per core).
        public var eventLoopThreads: Int?
        /// When set, the socket is mode 0660 and owned by this group, so its members can connect.
        public var socketGroup: gid_t?
        /// Connections beyond this are answered with an error and closed, bounding file descriptors.
        public var maximumConnections = 4096

        public init(socketPath: String) {
            self.socketPath = socketPath
        }
    }

    struct Connection: Sendable {
        var peer: PeerCredentials
        var channel: NIOAsyncChannel<ByteBuffer, SlowPathReply>
    }

    private struct OpenConnections {
        var channels: [ObjectIdentifier: any Channel] = [:]
        var draining = false
    }

    public let configuration: Configuration
    private let dispatcher: RPCDispatcher
    private let tokens: TokenCache
    private let clock: any BrokerClock
    private let access: AccessControl
    private let audit: AuditLog?
    private let logger: Logger
    private let open = Mutex(OpenConnections())
    private let connectionsGauge = Gauge(label: BrokerMetrics.connections)
    /// `token.get`s answered by the fast path (the dispatcher counts the rest).
    private let fastTokenGets = Counter(label: BrokerMetrics.rpcRequests, dimensions: [("method", "token.get"), ("code", "ok")])

    /// - Parameters:
    ///   - tokens: read directly by the event-loop fast path for `token.get`.
    public init(
        configuration: Configuration,
        dispatcher: RPCDispatcher,
        tokens: TokenCache,
        clock: any BrokerClock,
        access: AccessControl,
        audit: AuditLog?,
        logger: Logger
    ) {
        self.configuration = configuration
        self.dispatcher = dispatcher
        self.tokens = tokens
        self.clock = clock
        self.access = access
        self.audit = audit
        self.logger = logger
    }

    public func run() async throws {
        let group: MultiThreadedEventLoopGroup
        if let threads = self.configuration.eventLoopThreads {
            group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        } else {
            group = .singleton
        }
        defer {
            if group !== MultiThreadedEventLoopGroup.singleton { group.shutdownGracefully { _ in } }
        }
        let server = try await self.bind(group: group)
        let path = self.configuration.socketPath
        self.logger.info("listening", metadata: ["socket": "\(path)"])
        defer { unlink(path) }
        try await withGracefulShutdownHandler {
            try await server.executeThenClose { connections in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in connections {
                        group.addTask { await self.serve(connection) }
                    }
                }
            }
        } onGracefulShutdown: {
            self.drain(server: server.channel)
        }
        self.logger.info("stopped serving", metadata: ["socket": "\(path)"])
    }

    private func bind(group: MultiThreadedEventLoopGroup) async throws -> NIOAsyncChannel<Connection, Never> {
        let path = self.configuration.socketPath
        // Only a stale socket may be replaced; anything else at the path is the user's file.
        var existing = stat()
        if lstat(path, &existing) == 0, existing.st_mode & S_IFMT != S_IFSOCK {
            throw SocketPathError(path: path)
        }
        let staging = FileIO.directoryName(of: path) + "/.sobot-broker-\(getpid())"
        rmdir(staging)
        guard mkdir(staging, 0o700) == 0 else { throw SystemCallError("mkdir \(staging)") }
        defer { rmdir(staging) }
        let stagedSocket = staging + "/s"
        let maximumLineLength = self.configuration.maximumLineLength
        let (tokens, clock, access, audit, served) = (self.tokens, self.clock, self.access, self.audit, self.fastTokenGets)
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 512)
            // A client that half-closes after sending (as `socat` does on end of input) still gets
            // its replies; so does every connection whose input we close while draining.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 32 << 10, high: 256 << 10))
            .bind(unixDomainSocketPath: stagedSocket) { channel in
                PeerCredentials.read(from: channel).flatMapThrowing { peer in
                    try channel.pipeline.syncOperations.addHandler(
                        RequestLineHandler(
                            maximumLineLength: maximumLineLength,
                            cache: tokens,
                            clock: clock,
                            access: access,
                            audit: audit,
                            peer: peer,
                            servedCounter: served
                        )
                    )
                    return Connection(
                        peer: peer,
                        channel: try NIOAsyncChannel<ByteBuffer, SlowPathReply>(wrappingChannelSynchronously: channel)
                    )
                }
            }
        if let group = self.configuration.socketGroup, chown(stagedSocket, uid_t.max, group) != 0 {
            let failure = SystemCallError("chown \(stagedSocket) to group \(group)")
            try? await server.channel.close()
            throw failure
        }
        let mode = self.configuration.socketGroup == nil ? self.configuration.socketMode : 0o660
        guard chmod(stagedSocket, mode) == 0 else {
            let failure = SystemCallError("chmod \(stagedSocket)")
            try? await server.channel.close()
            throw failure
        }
        guard rename(stagedSocket, path) == 0 else {
            let failure = SystemCallError("rename socket into \(path)")
            try? await server.channel.close()
            unlink(stagedSocket)
            throw failure
        }
        return server
    }

    private func serve(_ connection: Connection) async {
        let channel = connection.channel.channel
        let id = ObjectIdentifier(channel)
        let (draining, count) = self.open.withLock { open in
            open.channels[id] = channel
            return (open.draining, open.channels.count)
        }
        self.connectionsGauge.record(count)
        defer {
            let remaining = self.open.withLock { open in
                open.channels.removeValue(forKey: id)
                return open.channels.count
            }
            self.connectionsGauge.record(remaining)
        }
        if count > self.configuration.maximumConnections {
            await self.refuse(connection, reason: "too many connections (limit \(self.configuration.maximumConnections)); try again later")
            return
        }
        if draining { channel.close(mode: .input, promise: nil) }
        let context = CallContext(peer: connection.peer)
        self.logger.debug("connection opened", metadata: ["peer": "\(connection.peer)"])
        do {
            try await connection.channel.executeThenClose { inbound, outbound in
                do {
                    for try await line in inbound {
                        let reply = await self.dispatcher.reply(toLine: Array(line.readableBytesView), context: context)
                        try await outbound.write(SlowPathReply(bytes: reply))
                    }
                } catch is LineTooLongError {
                    let error = RPCError.invalidRequest("line longer than \(self.configuration.maximumLineLength) bytes; closing")
                    try await outbound.write(SlowPathReply(bytes: RPCResponse.line(RPCResponse.failure(id: .null, error: error))))
                    self.logger.info("closed a connection that sent an over-long line", metadata: ["peer": "\(connection.peer)"])
                }
            }
        } catch {
            self.logger.debug("connection ended with an error", metadata: ["peer": "\(connection.peer)", "error": "\(error)"])
        }
        self.logger.debug("connection closed", metadata: ["peer": "\(connection.peer)"])
    }

    private func refuse(_ connection: Connection, reason: String) async {
        self.logger.warning("refused a connection", metadata: ["peer": "\(connection.peer)", "reason": "\(reason)"])
        try? await connection.channel.executeThenClose { _, outbound in
            let error = RPCError(code: RPCError.internalErrorCode, message: reason)
            try await outbound.write(SlowPathReply(bytes: RPCResponse.line(RPCResponse.failure(id: .null, error: error))))
        }
    }

    /// Stops accepting and half-closes every connection's input: each finishes what it already
    /// received, replies, and closes. Whatever is still open after `drainTimeout` is closed.
    private func drain(server: any Channel) {
        self.logger.info("draining connections")
        server.close(promise: nil)
        let channels = self.open.withLock { open in
            open.draining = true
            return Array(open.channels.values)
        }
        for channel in channels { channel.close(mode: .input, promise: nil) }
        let timeout = self.configuration.drainTimeout
        Task {
            try? await Task.sleep(for: .milliseconds(Int64(timeout * 1000)))
            for channel in self.open.withLock({ Array($0.channels.values) }) { channel.close(promise: nil) }
        }
    }
}
