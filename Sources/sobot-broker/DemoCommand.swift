import ArgumentParser
import BrokerCore
import BrokerServer
import Foundation
import Logging
import NIOPosix
import SobotBrokerClient
import SobotSimulator

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Offline end to end: simulator, temporary home, tenants file, daemon, a token fetched over the socket."
    )

    @Option(help: "Tenants file to import (default: the built-in copy of tenants.example.json).")
    var tenantsFile: String?

    @Option(help: "Lifetime of the simulator's tokens, in seconds.")
    var tokenTtl: Double = 3600

    @OptionGroup var logging: LogOptions

    func validate() throws {
        if let problem = SobotSimulator.tokenTTLProblem(self.tokenTtl) { throw ValidationError(problem) }
    }

    func run() async throws {
        let logger = self.logging.makeLogger(defaultLevel: .warning)
        print("sobot-broker demo: everything below runs on this machine, with no network.\n")
        let loaded = try OfflineTenants.load(self.tenantsFile, environment: Environment.variables)
        let (definitions, regionNames) = (loaded.definitions, loaded.regions)
        guard let first = definitions.first, let credential = first.credentials.first else {
            throw CLIError("\(self.tenantsFile ?? "the built-in example tenants"): no tenants to demonstrate with")
        }
        let simulator = SobotSimulator(tokenTTL: self.tokenTtl, logger: logger)
        for credential in definitions.flatMap(\.credentials) {
            simulator.register(appid: credential.appid, appKey: credential.appKey)
        }
        let port = try await simulator.start()
        print("1. Sobot simulator listening on http://127.0.0.1:\(port) (tokens live \(Int(self.tokenTtl)) s)")
        let home = try TemporaryHome()
        do {
            let paths = BrokerPaths(home: home.path)
            let report = try BrokerHome(paths: paths).initialize()
            let store = try BrokerHome(paths: paths).openStore()
            let imported = try store.upsert(definitions, now: Clock.unixNow)
            print("2. Temporary home \(paths.home): master key \(report.createdKey ? "created" : "kept") (mode 0600)")
            print("3. Imported \(self.tenantsFile ?? "tenants.example.json (built in)"): \(definitions.count) tenants, \(imported.credentialsWritten) credentials, app keys sealed with AES-256-GCM")
            var configuration = BrokerDaemon.Configuration(
                paths: paths,
                regions: RegionDirectory(baseURLs: Dictionary(uniqueKeysWithValues: regionNames.map { ($0, "http://127.0.0.1:\(port)") }))
            )
            configuration.modules = BuiltinModules.all
            let daemon = try await BrokerDaemon(configuration: configuration, logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await daemon.run() }
                do {
                    try await Self.waitForSocket(paths.socket)
                    print("4. Daemon serving JSON-RPC on \(paths.socket)")
                    let key = TokenKey(tenant: first.id, region: credential.region)
                    try await Self.scenario(client: SobotBrokerClient(socketPath: paths.socket, timeoutSeconds: 120), key: key, simulator: simulator)
                } catch {
                    await daemon.triggerShutdown()
                    throw error
                }
                await daemon.triggerShutdown()
                try await group.waitForAll()
            }
            print("\nStopped the daemon (socket removed: \(!FileIO.exists(paths.socket) ? "yes" : "no")); removing the temporary home.")
        } catch {
            await simulator.stop()
            home.remove()
            throw error
        }
        await simulator.stop()
        home.remove()
    }

    private static func scenario(client: SobotBrokerClient, key: TokenKey, simulator: SobotSimulator) async throws {
        let daemon = DaemonClient(client: client)
        let params: JSONValue = ["tenant": .string(key.tenant), "region": .string(key.region)]
        let first = try await Self.offload { try daemon.call("token.get", params: params) }
        let token = first["token"]?.stringValue ?? ""
        print("5. token.get \(key) over the socket: \(SecretMask.mask(token)), expires in \(first["expires_in"]?.integerValue ?? 0) s")
        let second = try await Self.offload { try daemon.call("token.get", params: params) }
        let same = second["token"]?.stringValue == token
        print("   again: \(same ? "the same token" : "a different token") (get_token calls upstream so far: \(simulator.tokenRequestCount))")
        print("6. status:")
        let status = try await Self.offload { try StatusReport.render(client: daemon) }
        print(status.split(separator: "\n").map { "   " + $0 }.joined(separator: "\n"))
        let modules = try await Self.offload { try daemon.call("module.list") }["modules"]?.arrayValue ?? []
        let names = modules.compactMap { module in
            module["name"]?.stringValue.map { "\($0) (\(module["status"]?.stringValue ?? "?"))" }
        }
        print("7. module.list: \(names.joined(separator: ", "))")
        let marketingActive = modules.contains { $0["name"] == "marketing" && $0["status"] == "active" }
        if marketingActive {
            let query: JSONValue = ["tenant": .string(key.tenant), "region": .string(key.region), "all_pages": true]
            let result = try await Self.offload { try daemon.call("marketing.subject.query", params: query) }
            let items = result["items"]?.arrayValue ?? []
            print("8. marketing.subject.query \(key) with all_pages: \(items.count) themes; first: \(items.first?["subject"]?.stringValue ?? "-")")
        }
    }

    /// Runs a blocking client call off the cooperative thread pool.
    private static func offload<Result: Sendable>(_ body: @escaping @Sendable () throws -> Result) async throws -> Result {
        try await NIOThreadPool.singleton.runIfActive(body)
    }

    private static func waitForSocket(_ path: String) async throws {
        for _ in 0..<200 {
            if FileIO.exists(path) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw CLIError("the daemon did not start listening on \(path) within 10 s")
    }
}

/// A private temporary directory (mode 0700), removed with everything in it by `remove()`.
struct TemporaryHome {
    let path: String

    init() throws {
        let directory = NSTemporaryDirectory().hasSuffix("/") ? NSTemporaryDirectory() : NSTemporaryDirectory() + "/"
        var template = Array("\(directory)sobot-broker-demo-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
            throw CLIError("cannot create a temporary directory")
        }
        self.path = String(cString: template)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: self.path)
    }
}
