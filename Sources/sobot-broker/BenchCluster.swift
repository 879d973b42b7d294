import BrokerCore
import BrokerPostgres
import BrokerServer
import Foundation
import Logging
import SobotSimulator

/// `bench --database-url URL --brokers N`: a cluster of real `serve` processes sharing one PostgreSQL
/// database (which should be a scratch one: the tenants `bench-…` are added to it), against the
/// in-process simulator. It times the import and the acquisition, a broker's restart at that size,
/// then loads each broker in turn while every broker refreshes underneath, and counts what the cluster
/// must never do: a `get_token` for a key before its refresh window (a duplicate).
struct BenchCluster {
    let brokers: Int
    let tenants: Int
    let tokenTTL: Double
    let url: DatabaseURL
    let progress: Bool

    struct Figures {
        var importSeconds: Double
        var acquisitionSeconds: Double
        var restartSeconds: Double
        var perBroker: [LoadGenerator.Report] = []
        var steadySeconds = 0.0
        var tokenCalls = 0
        var duplicateCalls = 0
        var transactionsPerSecond = 0.0
    }

    typealias Load = @Sendable (_ socket: String, _ tenantIDs: [String]) async throws -> LoadGenerator.Report

    func run(load: Load) async throws -> Figures {
        let simulator = SobotSimulator(tokenTTL: self.tokenTTL)
        let ids = (0..<self.tenants).map { String(format: "bench-%07d", $0) }
        var definitions: [TenantDefinition] = []
        for (index, id) in ids.enumerated() {
            let key = "bench-key-\(index)"
            simulator.register(appid: "bench-app\(index)", appKey: key)
            definitions.append(TenantDefinition(id: id, name: nil, credentials: [CredentialDefinition(region: "sg", appid: "bench-app\(index)", appKey: key)]))
        }
        let port = try await simulator.start()
        let homes = try (0..<self.brokers).map { _ in try TemporaryHome() }
        var processes: [Process?] = Array(repeating: nil, count: self.brokers)
        defer {
            for process in processes.compactMap({ $0 }) where process.isRunning { process.terminate() }
            for home in homes { home.remove() }
        }
        let first = BrokerHome(paths: BrokerPaths(home: homes[0].path))
        try first.initialize(createDatabase: false)
        for home in homes.dropFirst() {
            try FileManager.default.copyItem(atPath: first.paths.masterKey, toPath: BrokerPaths(home: home.path).masterKey)
        }
        let logger = Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }
        let environment = ProcessInfo.processInfo.environment
        let importSeconds = try await PostgresStore.withStore(
            url: self.url, environment: environment, sealer: SecretSealer(keyring: try first.loadKeyring()), clock: SystemClock(), logger: logger
        ) { store in
            try await store.migrate()
            try await store.recordSealingKeyIfUnset()
            let started = ContinuousClock.now
            _ = try await store.upsert(definitions, now: Clock.unixNow, dryRun: false)
            return (ContinuousClock.now - started).seconds
        }
        if self.progress { print("imported \(self.tenants) tenants into PostgreSQL in \(String(format: "%.2f", importSeconds)) s; starting \(self.brokers) brokers…") }

        let serveEnvironment = ["SOBOT_BROKER_DATABASE_URL": self.url.description, "SOBOT_BROKER_REGION_URLS": "sg=http://127.0.0.1:\(port)"]
        func launch(_ index: Int) throws -> Process {
            try BenchTarget.launch(
                ["serve", "--home", homes[index].path, "--log-level", "error", "--background-rate", "100000", "--background-concurrency", "32"],
                environment: serveEnvironment.merging(environment.filter { $0.key == "PGPASSWORD" }) { _, new in new }
            )
        }
        let socketPaths = homes.map { BrokerPaths(home: $0.path).socket }
        func sockets(_ index: Int) -> String { socketPaths[index] }
        let expected = Int64(self.tenants)
        let holdsEveryToken: @Sendable (Int) -> Bool = { index in
            guard case .success(let health)? = try? BrokerClient(socketPath: socketPaths[index], timeoutSeconds: 10).call("broker.health") else { return false }
            return health["tokens_valid"]?.integerValue == expected
        }

        let launched = ContinuousClock.now
        for index in 0..<self.brokers { processes[index] = try launch(index) }
        let timeout = 60 + Double(self.tenants) / 200
        for index in 0..<self.brokers {
            guard try await BenchTarget.waitUntil(timeout: timeout, interval: .milliseconds(250), { holdsEveryToken(index) }) else {
                throw CLIError("broker \(index) did not acquire \(self.tenants) tokens in time")
            }
        }
        let acquisitionSeconds = (ContinuousClock.now - launched).seconds

        processes[0]?.terminate()
        if let process = processes[0] { await BenchTarget.waitForExit(process) }
        let restarted = ContinuousClock.now
        processes[0] = try launch(0)
        guard try await BenchTarget.waitUntil(timeout: 60, interval: .milliseconds(10), { holdsEveryToken(0) }) else {
            throw CLIError("the restarted broker did not serve its tokens in time")
        }
        var figures = Figures(importSeconds: importSeconds, acquisitionSeconds: acquisitionSeconds, restartSeconds: (ContinuousClock.now - restarted).seconds)

        let transactionsBefore = try await self.transactionCount(environment: environment, keyring: try first.loadKeyring(), logger: logger)
        let steadyStart = ContinuousClock.now
        for index in 0..<self.brokers {
            if self.progress { print("loading broker \(index)…") }
            figures.perBroker.append(try await load(sockets(index), ids))
        }
        figures.steadySeconds = (ContinuousClock.now - steadyStart).seconds
        let transactionsAfter = try await self.transactionCount(environment: environment, keyring: try first.loadKeyring(), logger: logger)
        figures.transactionsPerSecond = Double(transactionsAfter - transactionsBefore) / figures.steadySeconds
        for index in 0..<self.tenants {
            let times = simulator.tokenRequestTimes(appid: "bench-app\(index)")
            figures.tokenCalls += times.count
            // A call before the previous token reached its refresh window is one the cluster should never make.
            figures.duplicateCalls += zip(times, times.dropFirst()).filter { $1 - $0 < 0.5 * self.tokenTTL - 1 }.count
        }
        await simulator.stop()
        return figures
    }

    private func transactionCount(environment: [String: String], keyring: MasterKeyring, logger: Logger) async throws -> Int64 {
        try await PostgresStore.withStore(url: self.url, environment: environment, sealer: SecretSealer(keyring: keyring), clock: SystemClock(), logger: logger) {
            try await $0.transactionCount()
        }
    }
}
