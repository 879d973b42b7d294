import ArgumentParser
import BrokerCore
import BrokerServer
import Foundation

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the daemon: JSON-RPC 2.0 over the Unix socket. SIGTERM/SIGINT drain requests, remove the socket, exit 0."
    )

    @OptionGroup var options: HomeOptions
    @OptionGroup var logging: LogOptions

    @Option(help: "Seconds to let in-flight requests finish on shutdown (default: 10).")
    var drainTimeout: Double?

    @Option(help: "Background token fetches (start-up acquisition, refreshes) per second per region (default: 20).")
    var backgroundRate: Double?

    @Option(help: "Background token fetches in flight at once per region (default: 4).")
    var backgroundConcurrency: Int?

    @Option(help: "Make the socket 0660 and owned by this group, so its members can connect (access rules still apply).")
    var socketGroup: String?

    @Option(help: "Serve Prometheus metrics, /healthz and /readyz over HTTP at HOST:PORT (e.g. 127.0.0.1:9464). HOST must be loopback unless --metrics-listen-any.")
    var metricsListen: String?

    @Flag(help: "Allow --metrics-listen on an address other hosts can reach (metrics are unauthenticated).")
    var metricsListenAny = false

    @Option(help: "Metrics connections open at once; further ones are closed at once (default: 64).")
    var metricsMaxConnections: Int?

    @Option(help: "Seconds a metrics connection may take to send a request (or stay idle) before it is closed (default: 10).")
    var metricsTimeout: Double?

    @Option(help: "Connections beyond this get an error and are closed; the last 1/64 (at most 64) are kept for the broker's own user and root (default: 4096).")
    var maxConnections: Int?

    @Option(help: "Connections one user (other than the broker's own and root) may hold at once (default: 256).")
    var maxConnectionsPerUid: Int?

    @Option(help: "Seconds after which a connection with nothing in flight is closed (0: never; default: 300).")
    var idleTimeout: Double?

    @Option(help: "MiB of request data (unfinished lines, lines waiting to be answered) all connections may hold together (default: 256).")
    var maxRequestMemory: Int?

    @Option(help: "Threads serving the socket. One answers a few hundred thousand cached token.gets a second; add more only where cores sit idle (default: 1).")
    var threads: Int?

    @Option(
        name: .customLong("http-proxy"),
        help: "Also serve the HTTP proxy (any Sobot API with the broker's token) at ADDR: an absolute path (Unix socket) or 127.0.0.1:PORT, [::1]:PORT, localhost:PORT. Repeatable."
    )
    var httpProxy: [String] = []

    @Option(help: "Connections the HTTP proxy holds open at once; further ones are closed at once (default: 1024).")
    var proxyMaxConnections: Int?

    @Option(help: "Comma-separated endpoint modules to serve (default: $SOBOT_BROKER_MODULES, else config modules, else all built-in).")
    var modules: String?

    func validate() throws {
        do {
            _ = try ServeSettings(self, config: self.options.configFile)
        } catch {
            throw error.exit
        }
    }

    func run() async throws {
        // Everything the daemon creates (database, WAL, lock) is private to its user.
        umask(0o077)
        let config = self.options.configFile
        let settings = try ServeSettings(self, config: config)
        Self.raiseFileLimit(toServe: settings.descriptorsNeeded)
        let logger = self.logging.makeLogger(configured: config.string("log-level"))
        let regions = try self.options.regions()
        var configuration = BrokerDaemon.Configuration(paths: self.options.paths, regions: regions)
        let store = try self.options.storeLocation
        if case .postgres(let url) = store { configuration.databaseURL = url }
        configuration.environment = Environment.variables
        configuration.modules = BuiltinModules.all
        settings.apply(to: &configuration)
        ServeStartupLog(config: config, regions: regions, settings: settings, store: store, paths: configuration.paths).write(to: logger)
        configuration.onHangup = { [self] in ServeConfigReload.check(command: self, running: settings, regions: regions, logger: logger) }
        let daemon = try await BrokerDaemon(configuration: configuration, logger: logger)
        try await daemon.run()
    }

    /// Raises the soft descriptor limit toward the hard one so the connection limit, not EMFILE, is
    /// what callers meet.
    private static func raiseFileLimit(toServe connections: Int) {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        let wanted = rlim_t(connections + 256)
        if limit.rlim_cur < wanted {
            limit.rlim_cur = min(wanted, limit.rlim_max)
            setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        }
    }
}
