import BrokerCore
import BrokerServer
import Foundation
import TestSupport
import Testing

/// Start-up, socket hygiene and shutdown of the real daemon.
@Suite(.heavy) struct DaemonLifecycleTests {
    @Test func theSocketIsPrivateFromTheStart() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        var info = stat()
        #expect(stat(daemon.socket, &info) == 0)
        #expect(info.st_mode & S_IFMT == S_IFSOCK)
        #expect(info.st_mode & 0o777 == 0o600)
        await daemon.shutdown()
    }

    @Test func aSecondServeOnTheSameHomeIsRefused() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        let second = try await runBroker(["serve"], environment: daemon.environment)
        #expect(second.status == 1)
        #expect(second.stderr.contains("already running"), "\(second.stderr)")
        #expect(try await daemon.call("broker.health").get()["status"] == "ok", "the first daemon keeps its socket")
        await daemon.shutdown()
    }

    @Test func aStaleSocketFromAKilledDaemonDoesNotBlockARestart() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        _ = try await daemon.stop(SIGKILL)
        #expect(FileManager.default.fileExists(atPath: daemon.socket), "kill -9 leaves the socket file behind")
        await #expect(throws: BrokerClientError.self) { try await daemon.call("broker.health") }
        try await daemon.start()
        #expect(try await daemon.call("broker.health").get()["status"] == "ok")
        await daemon.shutdown()
    }

    @Test func aRegularFileAtTheSocketPathIsNeverReplaced() async throws {
        let daemon = try await RunningDaemon(tenants: 1, start: false)
        let precious = daemon.directory.file("notes.txt")
        try "keep me".write(toFile: precious, atomically: true, encoding: .utf8)
        let result = try await runBroker(["serve", "--socket", precious], environment: daemon.environment)
        #expect(result.status == 1)
        #expect(result.stderr.contains("not a socket"), "\(result.stderr)")
        #expect(try String(contentsOfFile: precious, encoding: .utf8) == "keep me")
        await daemon.shutdown()
    }

    @Test func sigtermDrainsFiftyInFlightRequestsAndExitsCleanly() async throws {
        let daemon = try await RunningDaemon(tenants: 50, start: false)
        daemon.simulator.fault = .latency(milliseconds: 1500)
        // The drain itself is under test, not its deadline: on a loaded machine 50 answers may take
        // longer than the default 10 s to come back from the in-process simulator.
        try await daemon.start(extraArguments: ["--drain-timeout", "120"])
        let connections = try (0..<50).map { _ in try daemon.connect() }
        try await onThread {
            for (index, connection) in connections.enumerated() {
                try connection.send(line: #"{"jsonrpc":"2.0","id":\#(index),"method":"token.get","params":{"tenant":"t\#(index)"}}"#)
            }
        }
        // Each request is held 1.5 s at the upstream: once all 50 have arrived there, all are in flight.
        let inFlight = await eventually(timeout: 60) { daemon.simulator.tokenRequestCount >= 50 }
        #expect(inFlight, "the requests are in flight upstream")
        daemon.process?.signal(SIGTERM)
        var answered = 0
        for (index, connection) in connections.enumerated() {
            let reply = try await connection.nextReply()
            if reply["id"]?.integerValue == Int64(index), reply["result"]?["token"]?.stringValue != nil {
                answered += 1
            } else {
                Issue.record("request \(index) was answered \(reply["error"] ?? reply["id"] ?? "without an id")")
            }
        }
        #expect(answered == 50)
        let exit = try #require(try await daemon.stop())
        #expect(exit.status == 0, "\(exit.stderr)")
        #expect(!FileManager.default.fileExists(atPath: daemon.socket), "the socket is removed on exit")
        await daemon.shutdown()
    }
}
