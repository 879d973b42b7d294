#if canImport(Glibc)
import Glibc
#endif
import BrokerCore
import Logging
import ServiceLifecycle

/// The JSON-RPC endpoint: a Unix socket, one JSON message per `\n`-terminated line each way.
///
/// Connections are served by `SocketLoop`s, epoll loops of our own, each on its own thread: a cached
/// `token.get` is answered there from pre-encoded bytes, and anything else goes to the dispatcher on
/// the cooperative pool. (SwiftNIO's per-event machinery cost more than the rest of the request
/// together; see docs/performance.md.) On graceful shutdown the server stops accepting,
/// lets each connection finish the requests it already sent (bounded by `drainTimeout`), closes
/// them, and removes the socket file.
public final class UnixSocketServer: Service, Sendable {
    public struct Configuration: Sendable {
        public var socketPath: String
        public var maximumLineLength = 1 << 20
        public var drainTimeout: Double = 10
        public var socketMode: mode_t = 0o600
        /// Socket loops (threads) serving connections. One answers a few hundred thousand cached
        /// `token.get`s a second; more pay only where cores sit idle (see docs/performance.md).
        public var socketThreads = 1
        /// When set, the socket is mode 0660 and owned by this group, so its members can connect.
        public var socketGroup: gid_t?
        /// Connections beyond this are answered with an error and closed, bounding file descriptors.
        /// The last few (1/64, at most 64) are kept for the broker's own uid and root.
        public var maximumConnections = 4096
        /// Connections one uid other than the broker's own and root may hold at once.
        public var maximumConnectionsPerUID = 256
        /// A connection with nothing in flight and nothing sent for this long is closed.
        public var idleTimeout: Double = 300
        /// A request line begun but not finished within this long (while the broker reads) closes the connection.
        public var partialLineTimeout: Double = 30
        /// Request bytes (unfinished lines and lines waiting for the general path) the connections of
        /// callers other than the broker's owner and root may hold together; any one uid a quarter of it.
        public var maximumHeldRequestBytes = 256 << 20
        /// Called as a graceful shutdown begins draining.
        public var onShutdown: (@Sendable () -> Void)?
        /// Called once the socket listens, e.g. to tell systemd the daemon is ready.
        public var onListening: (@Sendable () -> Void)?

        public init(socketPath: String) {
            self.socketPath = socketPath
        }

        var connectionLimits: ConnectionStateMachine.Limits {
            var limits = ConnectionStateMachine.Limits()
            limits.maximumLineLength = self.maximumLineLength
            limits.idleTimeout = self.idleTimeout
            limits.partialLineTimeout = self.partialLineTimeout
            return limits
        }
    }

    public let configuration: Configuration
    private let services: ConnectionServices

    /// - Parameters:
    ///   - tokens: read directly by the fast path for `token.get`.
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
        self.services = ConnectionServices(
            dispatcher: dispatcher,
            cache: tokens,
            clock: clock,
            access: access,
            audit: audit,
            logger: logger,
            limits: configuration.connectionLimits,
            requestBudget: RequestBytesBudget(limit: configuration.maximumHeldRequestBytes),
            admission: ConnectionAdmission(
                maximumConnections: configuration.maximumConnections,
                maximumPerUID: configuration.maximumConnectionsPerUID,
                ownerUID: access.current.ownerUID
            )
        )
    }

    /// Throws, with a one-line reason, unless `path` is free or holds a stale socket: lets the daemon
    /// refuse before it does any work. (`run` checks again as it binds.)
    public static func checkSocketPath(_ path: String) throws {
        try UnixListener.refuseIfTaken(path)
    }

    /// Serves until graceful shutdown or cancellation. General-path workers run as children of a
    /// task group owned here, so none outlives the server.
    public func run() async throws {
        let path = self.configuration.socketPath
        let threads = max(1, self.configuration.socketThreads)
        let loops = try (0..<threads).map { _ in try SocketLoop(services: self.services) }
        let listener = try UnixListener.bind(path: path, mode: self.configuration.socketMode, group: self.configuration.socketGroup)
        let services = self.services
        let clock = services.clock
        do {
            try loops[0].accept(on: listener.descriptor, dealingTo: loops)
        } catch {
            close(listener.descriptor)
            listener.removeSocketFile()
            throw error
        }
        for (index, loop) in loops.enumerated() {
            do {
                try loop.start()
            } catch {
                // The first loop owns the listener once it runs, and closes it as it stops.
                if index == 0 {
                    loops[0].forgetPeers()
                    close(listener.descriptor)
                }
                for started in loops[..<index] {
                    started.post(.drain(deadline: clock.monotonicNow()))
                    await started.waitUntilStopped()
                }
                listener.removeSocketFile()
                throw error
            }
        }
        let logger = services.logger
        logger.info("listening", metadata: ["socket": "\(path)", "threads": "\(threads)"])
        self.configuration.onListening?()
        let drainTimeout = self.configuration.drainTimeout
        let onShutdown = self.configuration.onShutdown
        await withDiscardingTaskGroup { group in
            group.addTask {
                await withTaskCancellationHandler {
                    await withGracefulShutdownHandler {
                        await Self.waitForLoops(loops, services: services)
                    } onGracefulShutdown: {
                        logger.info("draining connections")
                        onShutdown?()
                        let deadline = clock.monotonicNow() + drainTimeout
                        for loop in loops { loop.post(.drain(deadline: deadline)) }
                    }
                } onCancel: {
                    let now = clock.monotonicNow()
                    for loop in loops { loop.post(.drain(deadline: now)) }
                }
                services.finishWorkers()
            }
            for await worker in services.workers {
                group.addTask { await worker.run(dispatcher: services.dispatcher) }
            }
        }
        listener.removeSocketFile()
        if services.hasFailed { throw SocketServerError.loopFailed }
        logger.info("stopped serving", metadata: ["socket": "\(path)"])
    }

    /// Waits until every loop has stopped; if one stops because it failed, stops the others at once.
    private static func waitForLoops(_ loops: [SocketLoop], services: ConnectionServices) async {
        await withTaskGroup(of: Void.self) { stops in
            for loop in loops {
                stops.addTask { await loop.waitUntilStopped() }
            }
            for await _ in stops where services.hasFailed {
                let now = services.clock.monotonicNow()
                for loop in loops { loop.post(.drain(deadline: now)) }
            }
        }
    }
}

public enum SocketServerError: Error, CustomStringConvertible {
    case loopFailed

    public var description: String {
        switch self {
        case .loopFailed: "a socket loop failed (see the log); the server stopped"
        }
    }
}
