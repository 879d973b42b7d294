import BrokerCore
import BrokerServer
import Foundation
import TestSupport
import Testing

/// `<home>/config.toml` against the real binary: the order flag, environment, file, default; strict
/// checking with one line naming the culprit; what `serve` logs as it starts; the socket a daemon
/// started elsewhere records in its home; and SIGHUP re-reading the file.
@Suite(.heavy) struct ConfigFileTests {
    private static func write(_ text: String, to path: String, mode: Int = 0o600) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
    }

    /// Starts `serve` with `arguments` and waits until `socket` answers.
    private static func serve(_ daemon: RunningDaemon, _ arguments: [String], environment: [String: String], socket: String) async throws -> BrokerProcess {
        let process = BrokerProcess(["serve"] + arguments, environment: environment)
        try await process.launch()
        let ready = await eventually(timeout: 60) {
            (try? await onThread { try BrokerClient(socketPath: socket).call("broker.health") }) != nil || !process.isRunning
        }
        guard ready, process.isRunning else { throw DaemonTestError("daemon did not start: \(process.stderrSoFar)") }
        daemon.process = process
        return process
    }

    @Test func flagsBeatTheEnvironmentWhichBeatsTheFileWhichBeatsTheDefaults() async throws {
        let daemon = try await RunningDaemon(tenants: 1, start: false)
        let configuredSocket = daemon.directory.file("configured.sock")
        // The file points sg at a port nobody serves; the environment's URL (the simulator) must win.
        try Self.write(
            """
            # sobot-broker settings
            socket = "\(configuredSocket)"
            drain-timeout = 3
            idle-timeout = 60
            log-level = "debug"

            [regions]
            sg = "http://127.0.0.1:1"
            eu = "https://eu.example.com/base/"
            """,
            to: daemon.home + "/config.toml"
        )
        var environment = ["SOBOT_BROKER_HOME": daemon.home, "SOBOT_BROKER_REGION_URLS": "sg=http://127.0.0.1:\(daemon.port)"]
        environment["SOBOT_BROKER_LOG_LEVEL"] = "info"
        let process = try await Self.serve(daemon, ["--drain-timeout", "5"], environment: environment, socket: configuredSocket)

        // A client with only the home finds the configured socket, and the token came from the simulator.
        let token = try await runBroker(["token", "t0"], environment: ["SOBOT_BROKER_HOME": daemon.home])
        #expect(token.status == 0 && !token.stdout.isEmpty, "\(token.stderr)")
        let log = process.stderrSoFar
        #expect(log.contains("config file: \(daemon.home)/config.toml"), "\(log)")
        #expect(log.contains("region sg uses http://127.0.0.1:\(daemon.port) (SOBOT_BROKER_REGION_URLS)"), "\(log)")
        #expect(log.contains("region eu uses https://eu.example.com/base (config)"), "\(log)")
        #expect(log.contains("region us uses https://us.sobot.com (built in)"), "\(log)")
        #expect(log.contains("drain-timeout=5 (flag)"), "the flag beats the file: \(log)")
        #expect(log.contains("idle-timeout=60 (config)"), "the file beats the default: \(log)")
        #expect(log.contains("log-level=info (SOBOT_BROKER_LOG_LEVEL)"), "the environment beats the file: \(log)")
        #expect(log.contains("threads=1,") && log.contains("socket-group=none,") && log.contains("modules=all,"), "defaults carry no origin: \(log)")
        #expect(!log.contains("debug"), "at info, as the environment says: \(log)")
        #expect(!log.contains(RunningDaemon.appKey(0)))
        await daemon.shutdown()
    }

    @Test func clientCommandsFindADaemonStartedWithSocket() async throws {
        let daemon = try await RunningDaemon(tenants: 1, start: false)
        let elsewhere = daemon.directory.file("elsewhere.sock")
        _ = try await Self.serve(daemon, ["--socket", elsewhere], environment: daemon.environment, socket: elsewhere)
        let homeOnly = ["SOBOT_BROKER_HOME": daemon.home]
        let health = try await runBroker(["health"], environment: homeOnly)
        #expect(health.status == 0, "found through serve.lock: \(health.stdout) \(health.stderr)")
        // An explicit socket still wins, even a wrong one.
        let explicit = try await runBroker(["health", "--socket", daemon.directory.file("nothing.sock")], environment: homeOnly)
        #expect(explicit.status == 1, "\(explicit.stdout)")
        await daemon.shutdown()
        // Once the daemon is gone its record is not trusted: the default path is used again.
        let after = try await runBroker(["health"], environment: homeOnly)
        #expect(after.status == 1 && after.stderr.contains("\(daemon.home)/broker.sock"), "\(after.stderr)")
    }

    @Test func aBadFileRefusesStartWithOneLineNamingTheCulprit() async throws {
        let directory = TemporaryDirectory("cfg")
        let home = directory.file("home")
        #expect(try await runBroker(["init"], environment: ["SOBOT_BROKER_HOME": home]).status == 0)
        let config = home + "/config.toml"
        let cases: [(text: String, expected: String)] = [
            ("threads = 2\nthreds = 3\n", "config file \(config):2:1: unknown key \"threds\"; did you mean threads?"),
            ("threads = 0\n", "config file \(config):1: threads must be 1-256"),
            ("threads = \"2\"\n", "config file \(config):1:1: threads must be an integer, not a string"),
            ("[regions]\nsg = \"http://sg.example.com;eu=x\"\n", "config file \(config):2:1: regions.sg is not a base URL"),
            ("[region]\nsg = \"http://a\"\n", "config file \(config):2:1: unknown table [region] (the file has only [regions])"),
            ("http-proxy = [\"/run/a.sock\", \"0.0.0.0:80\"]\n", "config file \(config):1: http-proxy: --http-proxy must be"),
            ("modules = [\"marketing\", \"crn\"]\n", "config file \(config):1: modules: unknown module \"crn\""),
            ("drain-timeout = 3\ndrain-timeout = 4\n", "config file \(config):2:1: key drain-timeout is given twice"),
            ("log-level = \"loud\"\n", "config file \(config):1: log-level must be one of trace"),
            ("socket = /tmp/x.sock\n", "config file \(config):1:10: expected a value (strings are quoted)"),
        ]
        for (text, expected) in cases {
            try Self.write(text, to: config)
            let result = try await runBroker(["serve"], environment: ["SOBOT_BROKER_HOME": home])
            #expect(result.status == 64, "\(text): \(result.stderr)")
            #expect(result.stderr.hasPrefix("Error: \(expected)"), "\(text): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "one line: \(result.stderr)")
        }
        // Every command that reads the file refuses it, not only serve.
        try Self.write("threds = 3\n", to: config)
        #expect(try await runBroker(["tenant", "list"], environment: ["SOBOT_BROKER_HOME": home]).status == 64)
        // A file others may write could redirect credentials: refused.
        try Self.write("threads = 2\n", to: config, mode: 0o622)
        let writable = try await runBroker(["serve"], environment: ["SOBOT_BROKER_HOME": home])
        #expect(writable.status == 64 && writable.stderr.contains("writable by group or others"), "\(writable.stderr)")
        // A named file must exist; the environment's list is as strict as the file.
        let missing = try await runBroker(["serve", "--config", directory.file("none.toml")], environment: ["SOBOT_BROKER_HOME": home])
        #expect(missing.status == 64 && missing.stderr.contains("none.toml: no such file"), "\(missing.stderr)")
        try FileManager.default.removeItem(atPath: config)
        let badList = try await runBroker(["serve"], environment: ["SOBOT_BROKER_HOME": home, "SOBOT_BROKER_REGION_URLS": "sg=http://a;eu=http://b"])
        #expect(badList.status == 64 && badList.stderr.split(separator: "\n").count == 1, "\(badList.stderr)")
        // SOBOT_BROKER_CONFIG names a file too.
        let named = directory.file("named.toml")
        try Self.write("max-connections = -1\n", to: named)
        let viaEnvironment = try await runBroker(["serve"], environment: ["SOBOT_BROKER_HOME": home, "SOBOT_BROKER_CONFIG": named])
        #expect(viaEnvironment.stderr.hasPrefix("Error: config file \(named):1: max-connections must be 1-1000000"), "\(viaEnvironment.stderr)")
    }

    @Test func hangupReReadsTheFileAndKeepsServingWhenItIsBroken() async throws {
        let daemon = try await RunningDaemon(tenants: 1, start: false)
        let config = daemon.home + "/config.toml"
        try Self.write("idle-timeout = 60\n", to: config)
        try await daemon.start()
        let process = try #require(daemon.process)

        try Self.write("idle-timeout = 90\nthreads = 2\n", to: config)
        process.signal(SIGHUP)
        let noticed = await eventually(timeout: 60) { process.stderrSoFar.contains("re-read: threads, idle-timeout changed; takes effect when the daemon restarts") }
        #expect(noticed, "\(process.stderrSoFar)")

        try Self.write("idle-timeout = \n", to: config)
        process.signal(SIGHUP)
        let refused = await eventually(timeout: 60) { process.stderrSoFar.contains("config file no longer reads; keeping the options in force") }
        #expect(refused, "\(process.stderrSoFar)")
        #expect(try await daemon.call("token.get", ["tenant": "t0"]).get()["token"] != nil, "still serving")
        await daemon.shutdown()
    }
}
