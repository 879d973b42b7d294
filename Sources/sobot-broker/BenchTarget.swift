import BrokerCore
import BrokerServer
import Foundation
import SobotSimulator

/// The self-contained setup of `bench`: a simulator, a temporary home with N tenants, and a real
/// `serve` child process (so its memory is measured alone). Tokens are acquired, then the daemon is
/// restarted to time how fast it serves again from persisted tokens.
struct BenchTarget {
    let home: TemporaryHome
    let simulator: SobotSimulator
    let process: Process
    let socket: String
    let tenantIDs: [String]
    let startupSeconds: Double

    static func start(tenants count: Int, tokenTTL: Double, progress: Bool) async throws -> BenchTarget {
        let simulator = SobotSimulator(tokenTTL: tokenTTL)
        let ids = (0..<count).map { String(format: "bench-%07d", $0) }
        var definitions: [TenantDefinition] = []
        for (index, id) in ids.enumerated() {
            let key = "bench-key-\(index)"
            simulator.register(appid: "app\(index)", appKey: key)
            definitions.append(TenantDefinition(id: id, name: nil, credentials: [CredentialDefinition(region: "sg", appid: "app\(index)", appKey: key)]))
        }
        let port = try await simulator.start()
        let home = try TemporaryHome()
        let paths = BrokerPaths(home: home.path)
        try BrokerHome(paths: paths).initialize()
        try BrokerHome(paths: paths).openStore().upsert(definitions, now: Clock.unixNow)
        let environment = ["SOBOT_BROKER_REGION_URLS": "sg=http://127.0.0.1:\(port)"]
        let arguments = ["serve", "--home", paths.home, "--log-level", "error", "--background-rate", "100000", "--background-concurrency", "32"]
        if progress { print("acquiring \(count) tokens from the simulator…") }
        var process = try Self.launch(arguments, environment: environment)
        let client = BrokerClient(socketPath: paths.socket, timeoutSeconds: 10)
        let acquired = try await Self.waitUntil(timeout: 60 + Double(count) / 200, interval: .milliseconds(250)) {
            guard case .success(let health) = try? client.call("broker.health") else { return false }
            return health["tokens_valid"]?.integerValue == Int64(count)
        }
        guard acquired else {
            process.terminate()
            throw CLIError("the daemon did not acquire \(count) tokens in time")
        }
        process.terminate()
        await Self.waitForExit(process)
        let issued = simulator.tokenRequestCount
        let launched = ContinuousClock.now
        process = try Self.launch(arguments, environment: environment)
        let probe = ids[count / 2]
        let serving = try await Self.waitUntil(timeout: 60, interval: .milliseconds(10)) {
            guard case .success(let reply) = try? client.call("token.get", params: ["tenant": .string(probe)]) else { return false }
            return reply["token"] != nil
        }
        let startup = (ContinuousClock.now - launched).seconds
        guard serving, simulator.tokenRequestCount == issued else {
            process.terminate()
            throw CLIError("the restarted daemon did not serve its persisted tokens")
        }
        return BenchTarget(home: home, simulator: simulator, process: process, socket: paths.socket, tenantIDs: ids, startupSeconds: startup)
    }

    func stop() async {
        self.process.terminate()
        await Self.waitForExit(self.process)
        await self.simulator.stop()
        self.home.remove()
    }

    static func launch(_ arguments: [String], environment: [String: String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        try process.run()
        return process
    }

    static func waitForExit(_ process: Process) async {
        _ = try? await BenchCommand.offload { process.waitUntilExit() }
    }

    static func waitUntil(timeout: Double, interval: Duration, _ condition: @escaping @Sendable () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * 1000))
        while ContinuousClock.now < deadline {
            if try await BenchCommand.offload(condition) { return true }
            try await Task.sleep(for: interval)
        }
        return false
    }
}
