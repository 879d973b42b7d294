import BrokerCore
import BrokerServer
import Foundation
import TestSupport
import Testing

/// kill -9 at awkward moments: afterwards the daemon starts and every secret opens.
@Suite struct CrashTests {
    static func writeTenantsFile(_ path: String, count: Int, prefix: String) throws {
        let entries = (0..<count).map { #"{"id":"\#(prefix)\#($0)","credentials":[{"region":"sg","appid":"\#(prefix)app\#($0)","app_key":"key-\#($0)"}]}"# }
        try #"{"tenants":[\#(entries.joined(separator: ","))]}"#.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Every credential and stored token of the home opens with the keyring on disk.
    static func assertEverySecretOpens(home: String) throws -> Int {
        let store = try BrokerHome(paths: BrokerPaths(home: home)).openStore()
        var opened = 0
        for key in try store.credentialKeys() {
            #expect(try store.credential(for: key) != nil)
            opened += 1
        }
        #expect(try store.loadTokens(expiringAfter: 0).unreadable.isEmpty)
        return opened
    }

    static func killAfter(_ arguments: [String], environment: [String: String], milliseconds: Int) async throws -> Bool {
        let process = BrokerProcess(arguments, environment: environment)
        try process.start()
        try await Task.sleep(for: .milliseconds(milliseconds))
        let interrupted = process.isRunning
        process.signal(SIGKILL)
        _ = try await process.exit()
        return interrupted
    }

    @Test func killingKeyRotateMidwayLosesNothing() async throws {
        let directory = TemporaryDirectory("crot")
        let environment = ["SOBOT_BROKER_HOME": directory.file("home")]
        _ = try await runBroker(["init"], environment: environment)
        try Self.writeTenantsFile(directory.file("t.json"), count: 20_000, prefix: "r")
        #expect(try await runBroker(["tenant", "import", directory.file("t.json")], environment: environment).status == 0)
        var interrupted = 0
        for delay in [40, 120, 250, 400] {
            if try await Self.killAfter(["key", "rotate"], environment: environment, milliseconds: delay) { interrupted += 1 }
            #expect(try Self.assertEverySecretOpens(home: directory.file("home")) == 20_000)
        }
        #expect(interrupted > 0, "at least one rotation was killed midway")
        let finished = try await runBroker(["key", "rotate"], environment: environment)
        #expect(finished.status == 0, "\(finished.stderr)")
        #expect(try BrokerHome(paths: BrokerPaths(home: directory.file("home"))).loadKeyring().keys.count == 1)
        #expect(try Self.assertEverySecretOpens(home: directory.file("home")) == 20_000)
    }

    @Test func killingALargeImportIsAllOrNothing() async throws {
        let directory = TemporaryDirectory("cimp")
        let environment = ["SOBOT_BROKER_HOME": directory.file("home")]
        _ = try await runBroker(["init"], environment: environment)
        try Self.writeTenantsFile(directory.file("first.json"), count: 10, prefix: "a")
        _ = try await runBroker(["tenant", "import", directory.file("first.json")], environment: environment)
        try Self.writeTenantsFile(directory.file("big.json"), count: 50_000, prefix: "b")
        var outcomes: Set<Int> = []
        for delay in [60, 150, 300] {
            _ = try await Self.killAfter(["tenant", "import", directory.file("big.json")], environment: environment, milliseconds: delay)
            let count = try Self.assertEverySecretOpens(home: directory.file("home"))
            #expect(count == 10 || count == 50_010, "a half-written import: \(count) credentials")
            outcomes.insert(count)
        }
        let daemon = BrokerProcess(["serve"], environment: environment)
        try daemon.start()
        let socket = directory.file("home") + "/broker.sock"
        #expect(await eventually(timeout: 15) { (try? await onThread { try BrokerClientProbe.health(socket) }) == true })
        daemon.signal(SIGTERM)
        #expect(try await daemon.exit().status == 0)
    }

    @Test func killingTheDaemonDuringARefreshStormLeavesEveryTokenReadable() async throws {
        let daemon = try await RunningDaemon(tenants: 200, tokenTTL: 2, start: false)
        for round in 0..<3 {
            try await daemon.start(extraArguments: ["--background-rate", "1000", "--background-concurrency", "16"])
            try await Task.sleep(for: .milliseconds(700 + round * 400))
            _ = try await daemon.stop(SIGKILL)
            _ = try Self.assertEverySecretOpens(home: daemon.home)
        }
        try await daemon.start()
        #expect(try await daemon.call("token.get", ["tenant": "t7"]).get()["token"] != nil)
        await daemon.shutdown()
    }
}

/// A tiny health probe for processes started outside RunningDaemon.
enum BrokerClientProbe {
    static func health(_ socket: String) throws -> Bool {
        if case .success(let health) = try BrokerClient(socketPath: socket).call("broker.health") { return health["status"] == "ok" }
        return false
    }
}
