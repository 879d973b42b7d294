#if canImport(Glibc)
import Glibc
#endif
import BrokerCore
import BrokerServer
import Logging

/// Every `serve` option resolved (flag, environment, config file, default) and range-checked, each
/// error naming the flag, variable or config line it came from.
struct ServeSettings: Sendable {
    let drainTimeout: ResolvedSetting<Double>
    let backgroundRate: ResolvedSetting<Double>
    let backgroundConcurrency: ResolvedSetting<Int>
    let socketGroup: ResolvedSetting<String?>
    let metricsListen: ResolvedSetting<MetricsListenAddress?>
    let metricsMaxConnections: ResolvedSetting<Int>
    let metricsTimeout: ResolvedSetting<Double>
    let maxConnections: ResolvedSetting<Int>
    let maxConnectionsPerUID: ResolvedSetting<Int>
    let idleTimeout: ResolvedSetting<Double>
    let maxRequestMemory: ResolvedSetting<Int>
    let threads: ResolvedSetting<Int>
    let httpProxy: ResolvedSetting<[ProxyListenAddress]>
    let proxyMaxConnections: ResolvedSetting<Int>
    let modules: ResolvedSetting<Set<String>?>
    let logLevel: ResolvedSetting<String>
    private let socketGroupID: gid_t?

    init(_ command: ServeCommand, config: BrokerConfigFile) throws(UsageFailure) {
        func number(_ flag: Double?, _ key: String, _ fallback: Double) -> ResolvedSetting<Double> {
            .resolve(flag: flag, key: key, file: config, reading: { $0.number(key) }, default: fallback)
        }
        func integer(_ flag: Int?, _ key: String, _ fallback: Int) -> ResolvedSetting<Int> {
            .resolve(flag: flag, key: key, file: config, reading: { $0.integer(key) }, default: fallback)
        }
        func check(_ holds: Bool, _ setting: ResolvedSetting<some Sendable>, _ rule: String) throws(UsageFailure) {
            guard holds else { throw UsageFailure("\(setting.culprit) must be \(rule)") }
        }
        self.drainTimeout = number(command.drainTimeout, "drain-timeout", 10)
        try check(self.drainTimeout.value >= 0 && self.drainTimeout.value <= 3600, self.drainTimeout, "0-3600 seconds")
        self.backgroundRate = number(command.backgroundRate, "background-rate", 20)
        try check(self.backgroundRate.value > 0 && self.backgroundRate.value <= 100_000, self.backgroundRate, "more than 0 and at most 100000")
        self.backgroundConcurrency = integer(command.backgroundConcurrency, "background-concurrency", 4)
        try check((1...10_000).contains(self.backgroundConcurrency.value), self.backgroundConcurrency, "1-10000")
        self.metricsMaxConnections = integer(command.metricsMaxConnections, "metrics-max-connections", 64)
        try check((1...10_000).contains(self.metricsMaxConnections.value), self.metricsMaxConnections, "1-10000")
        self.metricsTimeout = number(command.metricsTimeout, "metrics-timeout", 10)
        try check(self.metricsTimeout.value > 0 && self.metricsTimeout.value <= 3600, self.metricsTimeout, "more than 0 and at most 3600 seconds")
        self.maxConnections = integer(command.maxConnections, "max-connections", 4096)
        try check((1...1_000_000).contains(self.maxConnections.value), self.maxConnections, "1-1000000")
        self.maxConnectionsPerUID = integer(command.maxConnectionsPerUid, "max-connections-per-uid", 256)
        try check((1...1_000_000).contains(self.maxConnectionsPerUID.value), self.maxConnectionsPerUID, "1-1000000")
        self.idleTimeout = number(command.idleTimeout, "idle-timeout", 300)
        try check(self.idleTimeout.value >= 0 && self.idleTimeout.value <= 86_400 * 365, self.idleTimeout, "0 (never) or at most a year of seconds")
        self.maxRequestMemory = integer(command.maxRequestMemory, "max-request-memory", 256)
        try check((1...65536).contains(self.maxRequestMemory.value), self.maxRequestMemory, "1-65536 (MiB)")
        self.threads = integer(command.threads, "threads", 1)
        try check((1...256).contains(self.threads.value), self.threads, "1-256")
        self.proxyMaxConnections = integer(command.proxyMaxConnections, "proxy-max-connections", 1024)
        try check((1...100_000).contains(self.proxyMaxConnections.value), self.proxyMaxConnections, "1-100000")

        self.logLevel = .resolve(
            flag: command.logging.logLevel,
            key: "log-level",
            environment: ("SOBOT_BROKER_LOG_LEVEL", Environment.variables["SOBOT_BROKER_LOG_LEVEL"]),
            file: config,
            reading: { $0.string("log-level") },
            default: "info"
        )
        try check(Logger.Level(rawValue: self.logLevel.value) != nil, self.logLevel, "one of trace, debug, info, notice, warning, error, critical")

        let group = ResolvedSetting<String?>.resolve(
            flag: command.socketGroup.map(Optional.some),
            key: "socket-group",
            file: config,
            reading: { $0.string("socket-group").map(Optional.some) },
            default: nil
        )
        self.socketGroup = group
        if let name = group.value {
            guard let entry = getgrnam(name) else { throw UsageFailure("\(group.culprit): no such group: \(name)") }
            self.socketGroupID = entry.pointee.gr_gid
        } else {
            self.socketGroupID = nil
        }

        let listenAny = command.metricsListenAny || config.boolean("metrics-listen-any") == true
        let listen = ResolvedSetting<String?>.resolve(
            flag: command.metricsListen.map(Optional.some),
            key: "metrics-listen",
            file: config,
            reading: { $0.string("metrics-listen").map(Optional.some) },
            default: nil
        )
        do {
            self.metricsListen = ResolvedSetting(value: try listen.value.map { try MetricsListenAddress(parsing: $0, allowingAny: listenAny) }, source: listen.source)
        } catch {
            throw UsageFailure(listen.explaining("\(error)"))
        }

        let proxies = ResolvedSetting<[String]>.resolve(
            flag: command.httpProxy.isEmpty ? nil : command.httpProxy,
            key: "http-proxy",
            file: config,
            reading: { $0.strings("http-proxy") },
            default: []
        )
        var addresses: [ProxyListenAddress] = []
        for text in proxies.value {
            do {
                addresses.append(try ProxyListenAddress(parsing: text))
            } catch {
                throw UsageFailure(proxies.explaining("\(error)"))
            }
        }
        self.httpProxy = ResolvedSetting(value: addresses, source: proxies.source)

        let environmentModules = Environment.variables["SOBOT_BROKER_MODULES"].map(Self.moduleList)
        let modules = ResolvedSetting<Set<String>?>.resolve(
            flag: command.modules.map { Optional.some(Self.moduleList($0)) },
            key: "modules",
            environment: ("SOBOT_BROKER_MODULES", environmentModules.map(Optional.some)),
            file: config,
            reading: { $0.strings("modules").map { Optional.some(Set($0)) } },
            default: nil
        )
        let known = Set(BuiltinModules.all.map(\.name))
        for name in (modules.value ?? []).sorted() where !known.contains(name) {
            throw UsageFailure("\(modules.culprit): unknown module \"\(name)\" (built in: \(known.sorted().joined(separator: ", ")))")
        }
        self.modules = modules
    }

    private static func moduleList(_ text: String) -> Set<String> {
        Set(text.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }

    /// Descriptors the daemon may hold for connections at once.
    var descriptorsNeeded: Int {
        self.maxConnections.value + (self.metricsListen.value == nil ? 0 : self.metricsMaxConnections.value)
            + (self.httpProxy.value.isEmpty ? 0 : self.proxyMaxConnections.value)
    }

    func apply(to configuration: inout BrokerDaemon.Configuration) {
        configuration.enabledModules = self.modules.value
        configuration.drainTimeout = self.drainTimeout.value
        configuration.socketThreads = self.threads.value
        configuration.maximumConnections = self.maxConnections.value
        configuration.maximumConnectionsPerUID = self.maxConnectionsPerUID.value
        configuration.idleTimeout = self.idleTimeout.value == 0 ? .infinity : self.idleTimeout.value
        configuration.maximumHeldRequestBytes = self.maxRequestMemory.value << 20
        configuration.metricsListen = self.metricsListen.value
        configuration.httpProxy = self.httpProxy.value
        configuration.proxyLimits.maximumConnections = self.proxyMaxConnections.value
        configuration.metricsLimits.maximumConnections = self.metricsMaxConnections.value
        configuration.metricsLimits.timeout = self.metricsTimeout.value
        configuration.socketGroup = self.socketGroupID
        configuration.policy.backgroundRatePerRegion = self.backgroundRate.value
        configuration.policy.backgroundConcurrencyPerRegion = self.backgroundConcurrency.value
    }

    /// `name=value` for every option, in a stable order, with where a non-default came from; never a
    /// secret (no option holds one).
    var summary: [(name: String, value: String, origin: String?)] {
        func item<Value>(_ name: String, _ setting: ResolvedSetting<Value>, _ text: (Value) -> String) -> (String, String, String?) {
            (name, text(setting.value), setting.origin)
        }
        func seconds(_ value: Double) -> String { value == value.rounded() ? String(Int(value)) : String(value) }
        return [
            item("threads", self.threads) { "\($0)" },
            item("max-connections", self.maxConnections) { "\($0)" },
            item("max-connections-per-uid", self.maxConnectionsPerUID) { "\($0)" },
            item("idle-timeout", self.idleTimeout) { seconds($0) },
            item("max-request-memory", self.maxRequestMemory) { "\($0)" },
            item("drain-timeout", self.drainTimeout) { seconds($0) },
            item("background-rate", self.backgroundRate) { seconds($0) },
            item("background-concurrency", self.backgroundConcurrency) { "\($0)" },
            item("socket-group", self.socketGroup) { $0 ?? "none" },
            item("metrics-listen", self.metricsListen) { $0.map { "\($0.host):\($0.port)" } ?? "off" },
            item("metrics-max-connections", self.metricsMaxConnections) { "\($0)" },
            item("metrics-timeout", self.metricsTimeout) { seconds($0) },
            item("http-proxy", self.httpProxy) { $0.isEmpty ? "off" : $0.map(\.description).joined(separator: ",") },
            item("proxy-max-connections", self.proxyMaxConnections) { "\($0)" },
            item("modules", self.modules) { $0.map { $0.sorted().joined(separator: ",") } ?? "all" },
            item("log-level", self.logLevel) { $0 },
        ]
    }
}
