import BrokerCore
import BrokerServer
import Foundation
import SobotSimulator

/// A real `sobot-broker serve` child process on a temporary home, pointed at an in-process simulator.
public final class RunningDaemon: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public let simulator: SobotSimulator
    public let port: Int
    public var process: BrokerProcess?

    public let socketOverride: String?
    public var home: String { self.directory.file("home") }
    public var socket: String { self.socketOverride ?? self.home + "/broker.sock" }
    public var environment: [String: String] {
        var environment = ["SOBOT_BROKER_HOME": self.home, "SOBOT_BROKER_REGION_URLS": "sg=http://127.0.0.1:\(self.port),us=http://127.0.0.1:\(self.port)"]
        if let socket = self.socketOverride { environment["SOBOT_BROKER_SOCKET"] = socket }
        return environment
    }

    /// Initialises a home with `tenants` tenants (`t0`…, region sg, appids `app0`…) and starts the daemon.
    /// - Parameter socket: a socket path outside the home (which is 0700), for other users to reach.
    public init(tenants: Int = 3, tokenTTL: Double = 3600, start: Bool = true, socket: String? = nil, extraArguments: [String] = []) async throws {
        self.directory = TemporaryDirectory("d")
        self.socketOverride = socket
        self.simulator = SobotSimulator(tokenTTL: tokenTTL)
        self.port = try await self.simulator.start()
        let initialized = try await runBroker(["init"], environment: self.environment)
        guard initialized.status == 0 else { throw DaemonTestError("init failed: \(initialized.stderr)") }
        var entries: [String] = []
        for index in 0..<tenants {
            self.simulator.register(appid: "app\(index)", appKey: Self.appKey(index))
            entries.append(#"{"id":"t\#(index)","credentials":[{"region":"sg","appid":"app\#(index)","app_key":"\#(Self.appKey(index))"}]}"#)
        }
        let file = self.directory.file("tenants.json")
        try #"{"tenants":[\#(entries.joined(separator: ","))]}"#.write(toFile: file, atomically: true, encoding: .utf8)
        let imported = try await runBroker(["tenant", "import", file], environment: self.environment)
        guard imported.status == 0 else { throw DaemonTestError("import failed: \(imported.stderr)") }
        if start { try await self.start(extraArguments: extraArguments) }
    }

    public static func appKey(_ index: Int) -> String { "APPKEY-SECRET-\(index)-zq" }

    /// Starts `serve` and waits until it accepts connections.
    /// - Parameter launcher: a command that runs `sobot-broker serve …` (its arguments follow), such as
    ///   `unshare -m …` to give the daemon a filesystem of its own.
    public func start(extraArguments: [String] = [], launcher: [String] = []) async throws {
        let serve = ["serve"] + extraArguments
        let process =
            launcher.isEmpty
            ? BrokerProcess(serve, environment: self.environment)
            : BrokerProcess(Array(launcher.dropFirst()) + [BrokerExecutable.path] + serve, environment: self.environment, executable: launcher[0])
        try await process.launch()
        self.process = process
        let socket = self.socket
        let ready = await eventually(timeout: 60) {
            let answered = (try? await onThread { try BrokerClient(socketPath: socket).call("broker.health") }) != nil
            return answered || !process.isRunning
        }
        guard ready, process.isRunning else {
            throw DaemonTestError("daemon did not start: \(process.stderrSoFar)")
        }
    }

    public func call(_ method: String, _ params: JSONValue? = nil) async throws -> Result<JSONValue, RPCError> {
        let socket = self.socket
        return try await onThread { try BrokerClient(socketPath: socket).call(method, params: params) }
    }

    public func connect() throws -> BrokerConnection {
        try BrokerConnection(socketPath: self.socket, timeoutSeconds: 30)
    }

    /// Sends `signal` and waits for the daemon to exit.
    public func stop(_ signal: Int32 = SIGTERM) async throws -> CommandResult? {
        guard let process = self.process else { return nil }
        process.signal(signal)
        self.process = nil
        return try await process.exit()
    }

    /// Stops the daemon (if running) and the simulator.
    public func shutdown() async {
        _ = try? await self.stop()
        await self.simulator.stop()
    }

    deinit {
        self.process?.kill()
    }
}

public struct DaemonTestError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension JSONValue {
    /// Parses a reply line in tests.
    public static func line(_ bytes: [UInt8]) throws -> JSONValue { try JSONParser.parse(bytes) }
}
