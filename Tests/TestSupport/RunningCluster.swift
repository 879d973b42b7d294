import BrokerCore
import BrokerServer
import Foundation
import SobotSimulator

/// Several real `sobot-broker serve` processes sharing one private PostgreSQL server and one master
/// key, each with its own home (socket, lock, audit log), pointed at one in-process simulator.
///
///     guard let cluster = try await RunningCluster.startOrSkip(brokers: 3, tenants: 30) else { return }
///     defer { cluster.shutdown() }
public final class RunningCluster: @unchecked Sendable {
    public let directory = TemporaryDirectory("cluster")
    public let postgres: PostgresServer
    public let simulator: SobotSimulator
    public let port: Int
    public let databaseURL: String
    public let brokerCount: Int
    private var processes: [Int: BrokerProcess] = [:]
    private let lock = NSLock()

    /// Starts PostgreSQL (or returns nil, printing why, when it is missing outside CI), initialises
    /// `brokers` homes sharing one key, imports `tenants` tenants (`t0`…, region sg, appids `app0`…)
    /// and, unless `start` is false, starts every broker.
    public static func startOrSkip(
        brokers: Int,
        tenants: Int,
        tokenTTL: Double = 3600,
        start: Bool = true,
        extraArguments: [String] = []
    ) async throws -> RunningCluster? {
        guard let postgres = try await onThread({ try PostgresServer.startOrSkip() }) else { return nil }
        do {
            let cluster = try await RunningCluster(postgres: postgres, brokers: brokers, tenants: tenants, tokenTTL: tokenTTL)
            if start {
                for index in 0..<brokers { try await cluster.start(index, extraArguments: extraArguments) }
            }
            return cluster
        } catch {
            postgres.stop()
            throw error
        }
    }

    private init(postgres: PostgresServer, brokers: Int, tenants: Int, tokenTTL: Double) async throws {
        self.postgres = postgres
        self.brokerCount = brokers
        self.databaseURL = postgres.url()
        self.simulator = SobotSimulator(tokenTTL: tokenTTL)
        self.port = try await self.simulator.start()
        for index in 0..<brokers {
            if index > 0 {
                // The same key on every host: what an operator distributes before starting a broker.
                try FileManager.default.createDirectory(atPath: self.home(index), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                try FileManager.default.copyItem(atPath: self.home(0) + "/master.key", toPath: self.home(index) + "/master.key")
            }
            try await self.cli(index, ["init"]).requireSuccess("init of broker \(index)")
        }
        try await self.importTenants(count: tenants)
    }

    public func home(_ index: Int) -> String { self.directory.file("home\(index)") }

    public func socket(_ index: Int) -> String { self.home(index) + "/broker.sock" }

    public func environment(_ index: Int) -> [String: String] {
        [
            "SOBOT_BROKER_HOME": self.home(index),
            "SOBOT_BROKER_DATABASE_URL": self.databaseURL,
            "SOBOT_BROKER_REGION_URLS": "sg=http://127.0.0.1:\(self.port),us=http://127.0.0.1:\(self.port)",
        ]
    }

    public static func appKey(_ index: Int) -> String { RunningDaemon.appKey(index) }

    /// Imports tenants `t0`…`t(count-1)` through the CLI of broker 0, registering them with the simulator.
    public func importTenants(count: Int, from first: Int = 0) async throws {
        guard count > 0 else { return }
        var entries: [String] = []
        for index in first..<(first + count) {
            self.simulator.register(appid: "app\(index)", appKey: Self.appKey(index))
            entries.append(#"{"id":"t\#(index)","credentials":[{"region":"sg","appid":"app\#(index)","app_key":"\#(Self.appKey(index))"}]}"#)
        }
        let file = self.directory.file("tenants-\(first).json")
        try #"{"tenants":[\#(entries.joined(separator: ","))]}"#.write(toFile: file, atomically: true, encoding: .utf8)
        try await self.cli(0, ["tenant", "import", file]).requireSuccess("import")
    }

    /// Runs a `sobot-broker` command as broker `index`'s host would.
    public func cli(_ index: Int, _ arguments: [String], stdin: String? = nil) async throws -> CommandResult {
        try await runBroker(arguments, environment: self.environment(index), stdin: stdin)
    }

    /// Starts broker `index` and waits until it answers.
    public func start(_ index: Int, extraArguments: [String] = []) async throws {
        let process = BrokerProcess(["serve"] + extraArguments, environment: self.environment(index))
        try await process.launch()
        self.lock.withLock { self.processes[index] = process }
        let socket = self.socket(index)
        let ready = await eventually(timeout: 30) {
            let answered = (try? await onThread { try BrokerClient(socketPath: socket).call("broker.health") }) != nil
            return answered || !process.isRunning
        }
        guard ready, process.isRunning else { throw DaemonTestError("broker \(index) did not start: \(process.stderrSoFar)") }
    }

    public func process(_ index: Int) -> BrokerProcess? {
        self.lock.withLock { self.processes[index] }
    }

    /// Sends `signal` to broker `index` and waits for it to exit.
    @discardableResult
    public func stop(_ index: Int, _ signal: Int32 = SIGTERM) async throws -> CommandResult? {
        guard let process = self.lock.withLock({ self.processes.removeValue(forKey: index) }) else { return nil }
        process.signal(signal)
        return try await process.exit()
    }

    public func call(_ index: Int, _ method: String, _ params: JSONValue? = nil) async throws -> Result<JSONValue, RPCError> {
        let socket = self.socket(index)
        return try await onThread { try BrokerClient(socketPath: socket, timeoutSeconds: 60).call(method, params: params) }
    }

    /// The token broker `index` serves for `tenant`, or the error it answers.
    public func token(_ index: Int, _ tenant: String) async throws -> Result<String, RPCError> {
        try await self.call(index, "token.get", ["tenant": .string(tenant)]).map { $0["token"]?.stringValue ?? "" }
    }

    /// Every log line the brokers wrote so far.
    public var logs: String {
        self.lock.withLock { self.processes.values.map(\.stderrSoFar).joined(separator: "\n") }
    }

    /// Kills every broker still running and stops PostgreSQL: safe in `defer`. (The in-process
    /// simulator goes with the test process.)
    public func shutdown() {
        let running = self.lock.withLock {
            defer { self.processes.removeAll() }
            return Array(self.processes.values)
        }
        for process in running {
            process.kill()
        }
        self.postgres.stop()
    }
}

extension CommandResult {
    /// Throws with the command's stderr unless it exited 0.
    public func requireSuccess(_ what: String) throws {
        guard self.status == 0 else { throw DaemonTestError("\(what) failed (\(self.status)): \(self.stderr)") }
    }
}
