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
/// together; see README's performance section.) On graceful shutdown the server stops accepting,
/// lets each connection finish the requests it already sent (bounded by `drainTimeout`), closes
/// them, and removes the socket file.
public final class UnixSocketServer: Service, Sendable {
    public struct Configuration: Sendable {
        public var socketPath: String
        public var maximumLineLength = 1 << 20
        public var drainTimeout: Double = 10
        public var socketMode: mode_t = 0o600
        /// Socket loops (threads) serving connections. One answers a few hundred thousand cached
        /// `token.get`s a second; more pay only where cores sit idle (see README's performance section).
        public var socketThreads = 1
        /// When set, the socket is mode 0660 and owned by this group, so its members can connect.
        public var socketGroup: gid_t?
        /// Connections beyond this are answered with an error and closed, bounding file descriptors.
        public var maximumConnections = 4096

        public init(socketPath: String) {
            self.socketPath = socketPath
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
            maximumLineLength: configuration.maximumLineLength,
            maximumConnections: configuration.maximumConnections
        )
    }

    public func run() async throws {
        let path = self.configuration.socketPath
        let threads = max(1, self.configuration.socketThreads)
        let loops = try (0..<threads).map { _ in try SocketLoop(services: self.services) }
        let listener = try UnixListener.bind(path: path, mode: self.configuration.socketMode, group: self.configuration.socketGroup)
        let clock = self.services.clock
        do {
            try loops[0].accept(on: listener, dealingTo: loops)
        } catch {
            close(listener)
            unlink(path)
            throw error
        }
        for (index, loop) in loops.enumerated() {
            do {
                try loop.start()
            } catch {
                // The first loop owns the listener once it runs, and closes it as it stops.
                if index == 0 { close(listener) }
                for started in loops[..<index] {
                    started.post(.drain(deadline: clock.monotonicNow()))
                    await started.waitUntilStopped()
                }
                unlink(path)
                throw error
            }
        }
        let logger = self.services.logger
        logger.info("listening", metadata: ["socket": "\(path)", "threads": "\(threads)"])
        let drainTimeout = self.configuration.drainTimeout
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                for loop in loops { await loop.waitUntilStopped() }
            } onGracefulShutdown: {
                logger.info("draining connections")
                let deadline = clock.monotonicNow() + drainTimeout
                for loop in loops { loop.post(.drain(deadline: deadline)) }
            }
        } onCancel: {
            let now = clock.monotonicNow()
            for loop in loops { loop.post(.drain(deadline: now)) }
        }
        unlink(path)
        logger.info("stopped serving", metadata: ["socket": "\(path)"])
    }
}
