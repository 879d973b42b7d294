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
    @OptionGroup var output: JSONOutputOption

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
            StandardError.line("note: \(variable) is not set; the simulator uses a random key for that credential, so it will answer 900003 until you set the same value for both")
        }
        for credential in definitions.flatMap(\.credentials) {
            simulator.register(appid: credential.appid, appKey: credential.appKey)
        }
        let service = SimulatorService(simulator: simulator, port: self.port, appCount: definitions.count, ttl: self.tokenTtl, output: self.output)
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
    let output: JSONOutputOption

    func run() async throws {
        let bound = try await self.simulator.start(port: self.port)
        let url = "http://127.0.0.1:\(bound)"
        self.output.emit(
            """
            Sobot simulator on \(url) (\(self.appCount) tenants, token TTL \(Int(self.ttl)) s)
            point the broker at it: SOBOT_BROKER_REGION_URLS="sg=\(url),us=\(url)"
            make it fail: curl '\(url)/_simulator/fault?fault=http500' (none, hang, garbage, ret:999999, latency:250)
            """,
            json: [
                "url": .string(url), "port": .integer(Int64(bound)), "tenants": .integer(Int64(self.appCount)), "token_ttl_s": .integer(Int64(self.ttl)),
                "region_urls": .string("sg=\(url),us=\(url)"),
            ]
        )
        StandardOutput.flush()
        try? await gracefulShutdown()
        await self.simulator.stop()
    }
}

