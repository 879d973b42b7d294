import BrokerCore
import BrokerServer
import Foundation
import TestSupport
import Testing

/// How long a crash run is. `swift test` runs the short version; `Tests/Crash/run-crash-tests.sh`
/// sets `SOBOT_CRASH_ROUNDS` and `SOBOT_CRASH_TENANTS` for the long ones.
enum CrashRun {
    static let rounds = max(1, Int(ProcessInfo.processInfo.environment["SOBOT_CRASH_ROUNDS"] ?? "") ?? 1)
    static let tenants = Int(ProcessInfo.processInfo.environment["SOBOT_CRASH_TENANTS"] ?? "")

    /// The fixed kill delays of the short run, then as many random ones up to `latest` for each
    /// further round.
    static func delays(_ fixed: [Int], upTo latest: Int) -> [Int] {
        fixed + (1..<Self.rounds).flatMap { _ in fixed.map { _ in Int.random(in: 20...latest) } }
    }

    /// The latest kill delay for the long rounds: how long `operation` takes when left alone, so
    /// kills land anywhere in it, up to just after it finishes. The short run does not measure.
    static func latestDelay(measuring operation: () async throws -> Void) async throws -> Int {
        guard Self.rounds > 1 else { return 20 }
        let started = ContinuousClock.now
        try await operation()
        let elapsed = (ContinuousClock.now - started).components
        let milliseconds = Double(elapsed.seconds) * 1000 + Double(elapsed.attoseconds) / 1e15
        return max(21, Int(milliseconds * 1.1))
    }
}

/// kill -9 at awkward moments: afterwards the daemon starts and every secret opens.
@Suite(.serialized, .heavy) struct CrashTests {
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
        try await process.launch()
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
        let tenants = CrashRun.tenants ?? 20_000
        try Self.writeTenantsFile(directory.file("t.json"), count: tenants, prefix: "r")
        #expect(try await runBroker(["tenant", "import", directory.file("t.json")], environment: environment).status == 0)
        var interrupted = 0
        let latest = try await CrashRun.latestDelay { () async throws in
            #expect(try await runBroker(["key", "rotate"], environment: environment).status == 0)
        }
        let delays = CrashRun.delays([40, 120, 250, 400], upTo: latest)
        for delay in delays {
            if try await Self.killAfter(["key", "rotate"], environment: environment, milliseconds: delay) { interrupted += 1 }
            #expect(try Self.assertEverySecretOpens(home: directory.file("home")) == tenants)
        }
        #expect(interrupted > 0, "at least one rotation was killed midway")
        print("crash run: key rotate killed \(delays.count) times, \(interrupted) midway, \(tenants) tenants; every secret opened")
        let finished = try await runBroker(["key", "rotate"], environment: environment)
        #expect(finished.status == 0, "\(finished.stderr)")
        #expect(try BrokerHome(paths: BrokerPaths(home: directory.file("home"))).loadKeyring().keys.count == 1)
        #expect(try Self.assertEverySecretOpens(home: directory.file("home")) == tenants)
    }

    @Test func killingALargeImportIsAllOrNothing() async throws {
        let directory = TemporaryDirectory("cimp")
        let environment = ["SOBOT_BROKER_HOME": directory.file("home")]
        _ = try await runBroker(["init"], environment: environment)
        try Self.writeTenantsFile(directory.file("first.json"), count: 10, prefix: "a")
        _ = try await runBroker(["tenant", "import", directory.file("first.json")], environment: environment)
        let tenants = CrashRun.tenants ?? 50_000
        try Self.writeTenantsFile(directory.file("big.json"), count: tenants, prefix: "b")
        var outcomes: [Int: Int] = [:]
        let latest = try await CrashRun.latestDelay { () async throws in
            let scratch = ["SOBOT_BROKER_HOME": directory.file("scratch")]
            _ = try await runBroker(["init"], environment: scratch)
            #expect(try await runBroker(["tenant", "import", directory.file("big.json")], environment: scratch).status == 0)
        }
        let delays = CrashRun.delays([60, 150, 300], upTo: latest)
        for delay in delays {
            _ = try await Self.killAfter(["tenant", "import", directory.file("big.json")], environment: environment, milliseconds: delay)
            let count = try Self.assertEverySecretOpens(home: directory.file("home"))
            #expect(count == 10 || count == 10 + tenants, "a half-written import: \(count) credentials")
            outcomes[count, default: 0] += 1
        }
        print("crash run: import of \(tenants) tenants killed \(delays.count) times; credentials after each kill: \(outcomes)")
        let daemon = BrokerProcess(["serve"], environment: environment)
        try await daemon.launch()
        let socket = directory.file("home") + "/broker.sock"
        #expect(await eventually(timeout: 60) { (try? await onThread { try BrokerClientProbe.health(socket) }) == true })
        daemon.signal(SIGTERM)
        #expect(try await daemon.exit().status == 0)
    }

    @Test func killingTheDaemonDuringARefreshStormLeavesEveryTokenReadable() async throws {
        let daemon = try await RunningDaemon(tenants: 200, tokenTTL: 2, start: false)
        let pauses = CrashRun.delays([700, 1100, 1500], upTo: 1500)
        for pause in pauses {
            try await daemon.start(extraArguments: ["--background-rate", "1000", "--background-concurrency", "16"])
            try await Task.sleep(for: .milliseconds(pause))
            _ = try await daemon.stop(SIGKILL)
            _ = try Self.assertEverySecretOpens(home: daemon.home)
        }
        try await daemon.start()
        #expect(try await daemon.call("token.get", ["tenant": "t7"]).get()["token"] != nil)
        print("crash run: daemon killed \(pauses.count) times during refresh storms; every token opened")
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
