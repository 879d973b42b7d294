#if canImport(Glibc)
import Glibc
#endif
import BrokerCore
import BrokerPostgres
import Logging
import ServiceLifecycle

/// The whole daemon, wired: store, token engine, Sobot client, modules, dispatcher and socket server,
/// run as one `ServiceGroup` that shuts down gracefully on SIGTERM/SIGINT or `triggerShutdown()`.
public final class BrokerDaemon: Sendable {
    public struct Configuration: Sendable {
        public var paths: BrokerPaths
        public var regions: RegionDirectory
        public var policy = TokenPolicy()
        public var timeouts = SobotClient.Timeouts()
        public var modules: [any EndpointModule] = []
        public var enabledModules: Set<String>?
        public var drainTimeout: Double = 10
        public var socketThreads = 1
        public var socketGroup: UInt32?
        public var maximumConnections = 4096
        public var maximumConnectionsPerUID = 256
        /// Seconds a connection may sit with nothing in flight (`.infinity`: forever).
        public var idleTimeout: Double = 300
        public var maximumHeldRequestBytes = 256 << 20
        /// Where to serve Prometheus text over HTTP, off by default.
        public var metricsListen: MetricsListenAddress?
        public var metricsLimits = MetricsHTTPServer.Limits()
        /// A PostgreSQL database shared with the other brokers of a cluster; nil: the home's SQLite file.
        public var databaseURL: DatabaseURL?
        /// Where a database password is looked up when the URL has none (`PGPASSWORD`).
        public var environment: [String: String] = [:]

        public init(paths: BrokerPaths, regions: RegionDirectory) {
            self.paths = paths
            self.regions = regions
        }
    }

    private let group: ServiceGroup
    private let client: SobotClient
    private let backend: DaemonBackend
    private let lock: ServeLock
    public let tokens: TokenManager

    /// Takes the serve lock, opens the home (refusing an insecure key file), loads every persisted
    /// token, and builds the services. Nothing listens until `run()`.
    public init(configuration: Configuration, logger: Logger) async throws {
        let home = BrokerHome(paths: configuration.paths)
        guard FileIO.exists(configuration.paths.home) else { throw HomeError.notInitialized(configuration.paths.home) }
        self.lock = try ServeLock.acquire(at: configuration.paths.serveLock)
        try UnixSocketServer.checkSocketPath(configuration.paths.socket)
        let registry = try ModuleRegistry(configuration.modules, enabled: configuration.enabledModules)
        let client = SobotClient(regions: configuration.regions, timeouts: configuration.timeouts, logger: logger)
        let clock = SystemClock()
        let backend: DaemonBackend
        do {
            if let url = configuration.databaseURL {
                backend = try await .postgres(
                    url: url,
                    environment: configuration.environment,
                    home: home,
                    client: client,
                    clock: clock,
                    logger: logger
                )
            } else {
                backend = try .sqlite(home: home, client: client, clock: clock, logger: logger)
            }
        } catch {
            try? await client.shutdown()
            throw error
        }
        let store = backend.store
        let tokens = TokenManager(
            store: store,
            issuer: backend.issuer,
            clock: clock,
            policy: configuration.policy,
            logger: logger,
            encoder: FastTokenReply.fragments
        )
        let access: AccessControl
        do {
            try await tokens.start()
            access = try await AccessControl.load(from: store)
        } catch {
            await backend.stop()
            try? await client.shutdown()
            throw error
        }
        // Loading every stored token (decrypting, sorting and indexing them all) frees a lot at once.
        FreedMemory.release()
        let exporter = MetricsExporter(tokens: tokens)
        let audit = AuditLog(path: configuration.paths.home + "/audit.log", slotKeys: tokens.cache.key(of:), logger: logger)
        let upstream = BrokerUpstream(tokens: tokens, client: client, store: store, logger: logger)
        let dispatcher = RPCDispatcher(
            handlers: BrokerMethods(tokens: tokens, store: store, registry: registry, access: access, cluster: backend.cluster).handlers,
            registry: registry,
            moduleContext: ModuleContext(upstream: upstream, logger: logger, clock: clock),
            access: access,
            audit: audit,
            logger: logger
        )
        var serverConfiguration = UnixSocketServer.Configuration(socketPath: configuration.paths.socket)
        serverConfiguration.drainTimeout = configuration.drainTimeout
        serverConfiguration.socketThreads = configuration.socketThreads
        serverConfiguration.socketGroup = configuration.socketGroup
        serverConfiguration.maximumConnections = configuration.maximumConnections
        serverConfiguration.maximumConnectionsPerUID = configuration.maximumConnectionsPerUID
        serverConfiguration.idleTimeout = configuration.idleTimeout
        serverConfiguration.maximumHeldRequestBytes = configuration.maximumHeldRequestBytes
        let server = UnixSocketServer(
            configuration: serverConfiguration,
            dispatcher: dispatcher,
            tokens: tokens.cache,
            clock: clock,
            access: access,
            audit: audit,
            logger: logger
        )
        let reload = BrokerReload(store: store, tokens: tokens, access: access)
        let hangup = HangupReload(
            reload: { [backend] in
                backend.reloadKeyring(try home.loadKeyring())
                try await reload()
            },
            logger: logger
        )
        let watchers = backend.services(tokens, reload) + [hangup]
        // Services stop in reverse order: the server drains first, then the watchers, then the audit
        // log writes what the last requests recorded, then the refresher stops.
        var services: [any Service] = [tokens, audit] + watchers
        if let listen = configuration.metricsListen {
            services.append(MetricsHTTPServer(address: listen, limits: configuration.metricsLimits, exporter: exporter, logger: logger))
        }
        services.append(server)
        self.group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services.map { service in
                    .init(service: service, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup)
                },
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        self.client = client
        self.tokens = tokens
        self.backend = backend
    }

    /// Serves until shut down; then releases the HTTP client. The socket is removed by the server.
    public func run() async throws {
        do {
            try await self.group.run()
        } catch {
            await self.backend.stop()
            try? await self.client.shutdown()
            throw error
        }
        await self.backend.stop()
        try await self.client.shutdown()
        withExtendedLifetime(self.lock) {}
    }

    public func triggerShutdown() async {
        await self.group.triggerGracefulShutdown()
    }
}
