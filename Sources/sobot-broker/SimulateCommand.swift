import ArgumentParser
import BrokerCore
import Foundation
import Logging
import ServiceLifecycle
import SobotSimulator

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run the built-in Sobot API simulator on 127.0.0.1 for integration tests."
    )

    @Option(help: "Port to listen on (0 picks a free one).")
    var port: Int = 8081

    @Option(help: "Lifetime of issued tokens, in seconds.")
    var tokenTtl: Double = 7200

    @Option(help: "Tenants file whose appids and app keys the simulator accepts (default: the built-in copy of tenants.example.json).")
    var tenantsFile: String?

    @OptionGroup var logging: LogOptions

    func validate() throws {
        guard (0...65535).contains(self.port) else { throw ValidationError("--port must be 0-65535") }
        if let problem = SobotSimulator.tokenTTLProblem(self.tokenTtl) { throw ValidationError(problem) }
    }

    func run() async throws {
        let logger = self.logging.makeLogger(label: "sobot-simulator")
        let simulator = SobotSimulator(tokenTTL: self.tokenTtl, logger: logger)
        let loaded = try OfflineTenants.load(self.tenantsFile, environment: Environment.variables)
        let definitions = loaded.definitions
        for variable in loaded.standIns {
            print("note: \(variable) is not set; the simulator uses a random key for that credential, so it will answer 900003 until you set the same value for both")
        }
        for credential in definitions.flatMap(\.credentials) {
            simulator.register(appid: credential.appid, appKey: credential.appKey)
        }
        let service = SimulatorService(simulator: simulator, port: self.port, appCount: definitions.count, ttl: self.tokenTtl)
        let group = ServiceGroup(services: [service], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}

/// Runs the simulator until graceful shutdown.
struct SimulatorService: Service {
    let simulator: SobotSimulator
    let port: Int
    let appCount: Int
    let ttl: Double

    func run() async throws {
        let bound = try await self.simulator.start(port: self.port)
        print("Sobot simulator on http://127.0.0.1:\(bound) (\(self.appCount) tenants, token TTL \(Int(self.ttl)) s)")
        print("point the broker at it: SOBOT_BROKER_REGION_URLS=\"sg=http://127.0.0.1:\(bound),us=http://127.0.0.1:\(bound)\"")
        print("make it fail: curl 'http://127.0.0.1:\(bound)/_simulator/fault?fault=http500' (none, hang, garbage, ret:999999, latency:250)")
        StandardOutput.flush()
        try? await gracefulShutdown()
        await self.simulator.stop()
    }
}

