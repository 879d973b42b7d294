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

    @Option(help: "Seconds to let in-flight requests finish on shutdown.")
    var drainTimeout: Double = 10

    @Option(help: "Background token fetches (start-up acquisition, refreshes) per second per region.")
    var backgroundRate: Double = 20

    @Option(help: "Background token fetches in flight at once per region.")
    var backgroundConcurrency: Int = 4

    @Option(help: "Make the socket 0660 and owned by this group, so its members can connect (access rules still apply).")
    var socketGroup: String?

    @Option(help: "Serve Prometheus metrics over HTTP at HOST:PORT/metrics (e.g. 127.0.0.1:9464). HOST must be loopback unless --metrics-listen-any.")
    var metricsListen: String?

    @Flag(help: "Allow --metrics-listen on an address other hosts can reach (metrics are unauthenticated).")
    var metricsListenAny = false

    @Option(help: "Metrics connections open at once; further ones are closed at once.")
    var metricsMaxConnections: Int = 64

    @Option(help: "Seconds a metrics connection may take to send a request (or stay idle) before it is closed.")
    var metricsTimeout: Double = 10

    @Option(help: "Connections beyond this get an error and are closed; the last 1/64 (at most 64) are kept for the broker's own user and root.")
    var maxConnections: Int = 4096

    @Option(help: "Connections one user (other than the broker's own and root) may hold at once.")
    var maxConnectionsPerUid: Int = 256

    @Option(help: "Seconds after which a connection with nothing in flight is closed (0: never).")
    var idleTimeout: Double = 300

    @Option(help: "MiB of request data (unfinished lines, lines waiting to be answered) all connections may hold together.")
    var maxRequestMemory: Int = 256

    @Option(help: "Threads serving the socket. One answers a few hundred thousand cached token.gets a second; add more only where cores sit idle.")
    var threads: Int = 1

    @Option(
        name: .customLong("http-proxy"),
        help: "Also serve the HTTP proxy (any Sobot API with the broker's token) at ADDR: an absolute path (Unix socket) or 127.0.0.1:PORT, [::1]:PORT, localhost:PORT. Repeatable."
    )
    var httpProxy: [String] = []

    @Option(help: "Connections the HTTP proxy holds open at once; further ones are closed at once.")
    var proxyMaxConnections: Int = 1024

    @Option(help: "Comma-separated endpoint modules to serve (default: $SOBOT_BROKER_MODULES, else all built-in).")
    var modules: String?

    func validate() throws {
        guard self.backgroundRate > 0 else { throw ValidationError("--background-rate must be positive") }
        guard self.backgroundConcurrency > 0 else { throw ValidationError("--background-concurrency must be positive") }
        if let listen = self.metricsListen {
            do {
                _ = try MetricsListenAddress(parsing: listen, allowingAny: self.metricsListenAny)
            } catch {
                throw ValidationError(error.description)
            }
        }
        guard (1...10_000).contains(self.metricsMaxConnections) else { throw ValidationError("--metrics-max-connections must be 1-10000") }
        guard self.metricsTimeout > 0, self.metricsTimeout <= 3600 else { throw ValidationError("--metrics-timeout must be more than 0 and at most 3600 seconds") }
        guard (1...1_000_000).contains(self.maxConnections) else { throw ValidationError("--max-connections must be 1-1000000") }
        guard (1...1_000_000).contains(self.maxConnectionsPerUid) else { throw ValidationError("--max-connections-per-uid must be 1-1000000") }
        guard self.idleTimeout >= 0, self.idleTimeout <= 86_400 * 365 else { throw ValidationError("--idle-timeout must be 0 (never) or at most a year of seconds") }
        guard (1...65536).contains(self.maxRequestMemory) else { throw ValidationError("--max-request-memory must be 1-65536 (MiB)") }
        guard (1...256).contains(self.threads) else { throw ValidationError("--threads must be 1-256") }
        guard self.drainTimeout >= 0 else { throw ValidationError("--drain-timeout must not be negative") }
        for address in self.httpProxy {
            do {
                _ = try ProxyListenAddress(parsing: address)
            } catch {
                throw ValidationError(error.description)
            }
        }
        guard (1...100_000).contains(self.proxyMaxConnections) else { throw ValidationError("--proxy-max-connections must be 1-100000") }
        let known = Set(BuiltinModules.all.map(\.name))
        for name in self.enabledModules ?? [] where !known.contains(name) {
            throw ValidationError("unknown module \"\(name)\" (built in: \(known.sorted().joined(separator: ", ")))")
        }
    }

    private var enabledModules: Set<String>? {
        guard let list = self.modules ?? Environment.variables["SOBOT_BROKER_MODULES"] else { return nil }
        return Set(list.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }

    func run() async throws {
        // Everything the daemon creates (database, WAL, lock) is private to its user.
        umask(0o077)
        Self.raiseFileLimit(
            toServe: self.maxConnections + (self.metricsListen == nil ? 0 : self.metricsMaxConnections) + (self.httpProxy.isEmpty ? 0 : self.proxyMaxConnections)
        )
        let logger = self.logging.makeLogger()
        var configuration = BrokerDaemon.Configuration(paths: self.options.paths, regions: try Environment.regions())
        if case .postgres(let url) = try self.options.storeLocation {
            configuration.databaseURL = url
            configuration.environment = Environment.variables
        }
        configuration.modules = BuiltinModules.all
        configuration.enabledModules = self.enabledModules
        configuration.drainTimeout = self.drainTimeout
        configuration.socketThreads = self.threads
        configuration.maximumConnections = self.maxConnections
        configuration.maximumConnectionsPerUID = self.maxConnectionsPerUid
        configuration.idleTimeout = self.idleTimeout == 0 ? .infinity : self.idleTimeout
        configuration.maximumHeldRequestBytes = self.maxRequestMemory << 20
        configuration.metricsListen = try self.metricsListen.map { try MetricsListenAddress(parsing: $0, allowingAny: self.metricsListenAny) }
        configuration.httpProxy = try self.httpProxy.map { try ProxyListenAddress(parsing: $0) }
        configuration.proxyLimits.maximumConnections = self.proxyMaxConnections
        configuration.metricsLimits.maximumConnections = self.metricsMaxConnections
        configuration.metricsLimits.timeout = self.metricsTimeout
        if let name = self.socketGroup {
            guard let group = getgrnam(name) else { throw CLIError("no such group: \(name)") }
            configuration.socketGroup = group.pointee.gr_gid
        }
        configuration.policy.backgroundRatePerRegion = self.backgroundRate
        configuration.policy.backgroundConcurrencyPerRegion = self.backgroundConcurrency
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
