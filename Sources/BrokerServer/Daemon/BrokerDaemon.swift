#if canImport(Glibc)
import Glibc
#endif
import BrokerCore
import BrokerPostgres
import Logging
import ServiceLifecycle

/// The whole daemon, wired: store, token engine, Sobot client, modules, dispatcher, client keys and
/// socket server, run as one `ServiceGroup` that shuts down gracefully on SIGTERM/SIGINT or
/// `triggerShutdown()`.
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
        /// Where to serve the HTTP proxy (`serve --http-proxy`), none by default.
        public var httpProxy: [ProxyListenAddress] = []
        public var proxyLimits = HTTPProxyServer.Limits()
        /// Where to serve Prometheus text over HTTP, off by default.
        public var metricsListen: MetricsListenAddress?
        public var metricsLimits = MetricsHTTPServer.Limits()
        /// A PostgreSQL database shared with the other brokers of a cluster; nil: the home's SQLite file.
        public var databaseURL: DatabaseURL?
        /// The process environment: where a database password is looked up when the URL has none
        /// (`PGPASSWORD`), and systemd's `NOTIFY_SOCKET`.
        public var environment: [String: String] = [:]
        /// Called on SIGHUP before the reload, for what the daemon's owner reloads itself (the CLI
        /// re-reads its config file).
        public var onHangup: (@Sendable () -> Void)?

        public init(paths: BrokerPaths, regions: RegionDirectory) {
            self.paths = paths
            self.regions = regions
        }
    }

    private let group: ServiceGroup
    private let client: SobotClient
    private let forwarder: EventLoopForwarder
    private let backend: DaemonBackend
    private let lock: ServeLock
    public let tokens: TokenManager
    /// The client keys TCP callers of the HTTP proxy present, kept current by every reload.
    public let clientKeys: ClientKeyVerifier

    /// Takes the serve lock, opens the home (refusing an insecure key file), loads every persisted
    /// token, and builds the services. Nothing listens until `run()`.
    public init(configuration: Configuration, logger: Logger) async throws {
        let home = BrokerHome(paths: configuration.paths)
        guard FileIO.exists(configuration.paths.home) else { throw HomeError.notInitialized(configuration.paths.home) }
        self.lock = try ServeLock.acquire(at: configuration.paths.serveLock, socket: configuration.paths.socket)
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
        let clientKeys: ClientKeyVerifier
        do {
            try await tokens.start()
            access = try await AccessControl.load(from: store)
            clientKeys = try await ClientKeyVerifier.load(from: store, clock: clock)
        } catch {
            await backend.stop()
            try? await client.shutdown()
            throw error
        }
        // Loading every stored token (decrypting, sorting and indexing them all) frees a lot at once.
        FreedMemory.release()
        let exporter = MetricsExporter(tokens: tokens)
        let audit = AuditLog(path: configuration.paths.home + "/audit.log", slotKeys: tokens.cache.key(of:), logger: logger)
        let forwarder = EventLoopForwarder(regions: configuration.regions, timeouts: configuration.timeouts)
        let upstream = BrokerUpstream(tokens: tokens, client: client, store: store, forwarder: forwarder, logger: logger)
        let methods = BrokerMethods(tokens: tokens, store: store, registry: registry, access: access, clientKeys: clientKeys, cluster: backend.cluster)
        let dispatcher = RPCDispatcher(
            handlers: methods.handlers,
            registry: registry,
            moduleContext: ModuleContext(upstream: upstream, logger: logger, clock: clock),
            access: access,
            audit: audit,
            logger: logger
        )
        var proxy: HTTPProxyServer?
        if !configuration.httpProxy.isEmpty {
            // /_broker/health answers probes as the broker's owner sees itself: every tenant counted.
            let owner = PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid())
            let router = ProxyRouter(dispatcher: dispatcher, upstream: upstream) {
                (try? await methods.health(nil, peer: owner)) ?? ["status": "ok"]
            }
            let fastPath = ProxyFastPath(cache: tokens.cache, clock: clock, forwarder: forwarder, upstream: upstream, dispatcher: dispatcher)
            do {
                proxy = try await HTTPProxyServer.bind(
                    configuration.httpProxy,
                    socketGroup: configuration.socketGroup,
                    router: router,
                    fastPath: fastPath,
                    keys: { presented in clientKeys.verify(presented: presented) },
                    limits: configuration.proxyLimits,
                    logger: logger
                )
            } catch {
                await backend.stop()
                try? await client.shutdown()
                throw error
            }
        }
        var serverConfiguration = UnixSocketServer.Configuration(socketPath: configuration.paths.socket)
        serverConfiguration.drainTimeout = configuration.drainTimeout
        serverConfiguration.socketThreads = configuration.socketThreads
        serverConfiguration.socketGroup = configuration.socketGroup
        serverConfiguration.maximumConnections = configuration.maximumConnections
        serverConfiguration.maximumConnectionsPerUID = configuration.maximumConnectionsPerUID
        serverConfiguration.idleTimeout = configuration.idleTimeout
        serverConfiguration.maximumHeldRequestBytes = configuration.maximumHeldRequestBytes
        let systemd = SystemdNotifier(environment: configuration.environment)
        let listening = ReadinessFlag()
        serverConfiguration.onListening = {
            listening.set()
            systemd.ready()
        }
        serverConfiguration.onShutdown = { systemd.stopping() }
        let server = UnixSocketServer(
            configuration: serverConfiguration,
            dispatcher: dispatcher,
            tokens: tokens.cache,
            clock: clock,
            access: access,
            audit: audit,
            logger: logger
        )
        let reload = BrokerReload(store: store, tokens: tokens, access: access, clientKeys: clientKeys)
        let hangup = HangupReload(
            reload: { [backend, onHangup = configuration.onHangup] in
                systemd.reloading()
                defer { systemd.ready() }
                onHangup?()
                backend.reloadKeyring(try home.loadKeyring())
                try await reload()
            },
            logger: logger
        )
        let watchers = backend.services(tokens, reload) + [hangup]
        let usage = ClientKeyUsageFlush(keys: clientKeys, store: store, clock: clock, logger: logger)
        // Services stop in reverse order: the server drains first, then the watchers, then the last
        // client-key uses and what the audit log holds of the last requests are written, then the
        // refresher stops.
        var services: [any Service] = [tokens, audit, usage] + watchers
        if let listen = configuration.metricsListen {
            let readiness: @Sendable () async -> String? = { [store] in
                guard listening.isSet else { return "the socket is not listening yet" }
                guard await StoreProbe.answers(store, within: 2) else { return "the store does not answer" }
                return nil
            }
            services.append(
                MetricsHTTPServer(address: listen, limits: configuration.metricsLimits, exporter: exporter, readiness: readiness, logger: logger)
            )
        }
        services.append(server)
        if let proxy { services.append(proxy) }
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
        self.forwarder = forwarder
        self.tokens = tokens
        self.clientKeys = clientKeys
        self.backend = backend
    }

    /// Serves until shut down; then releases the HTTP client. The socket is removed by the server.
    public func run() async throws {
        do {
            try await self.group.run()
        } catch {
            await self.backend.stop()
            self.forwarder.shutdown()
            try? await self.client.shutdown()
            throw error
        }
        await self.backend.stop()
        self.forwarder.shutdown()
        try await self.client.shutdown()
        withExtendedLifetime(self.lock) {}
    }

    public func triggerShutdown() async {
        await self.group.triggerGracefulShutdown()
    }
}
