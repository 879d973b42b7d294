import BrokerCore
import BrokerServer
import Foundation
import SobotSimulator
import TestSupport
import Testing

/// The real daemon against a lying upstream: the simulator is told to send hostile `get_token` replies.
@Suite(.heavy) struct DaemonHostileUpstreamTests {
    /// Each of these once crashed the daemon (a trapping conversion, or a token AsyncHTTPClient
    /// cannot send) or scheduled the next refresh 2,300 years away; persisted, it crashed every restart.
    @Test(arguments: [
        SimulatorFault.expiresIn(.double(1e308)), .expiresIn(.string("1e308")), .expiresIn(.double(9.3e18)),
        .expiresIn(.integer(99_999_999_999)), .tokenLength(70_000),
    ])
    func theDaemonSurvivesAHostileTokenReplyAndRecovers(_ fault: SimulatorFault) async throws {
        let daemon = try await RunningDaemon(tenants: 1, start: false)
        daemon.simulator.fault = fault
        try await daemon.start()
        try await Self.expectUnavailableButServing(daemon)
        let stopped = try #require(try await daemon.stop())
        #expect(stopped.status == 0, "\(stopped.stderr)")
        try await daemon.start()
        try await Self.expectUnavailableButServing(daemon)

        daemon.simulator.fault = .none
        // The failures back off for a few seconds at most; then the same process serves again.
        let recovered = await eventually(timeout: 60, interval: 0.25) {
            (try? await daemon.call("token.get", ["tenant": "t0"]).get()) != nil
        }
        #expect(recovered)
        let token = try await daemon.call("token.get", ["tenant": "t0"]).get()
        #expect(daemon.simulator.isCurrent(token: try #require(token["token"]?.stringValue)))
        #expect((3000...3600).contains(try #require(token["expires_in"]?.integerValue)))
        #expect(try await daemon.call("marketing.catalog.query", ["tenant": "t0"]).get()["items"] != nil)
        await daemon.shutdown()
    }

    /// What an older broker persisted from a hostile reply: a restart must neither serve it nor crash.
    @Test(arguments: [(70_000, Int64(3600)), (32, Int64(99_999_999_999))])
    func aPersistedHostileTokenIsNotServedAfterARestart(_ length: Int, _ expiresIn: Int64) async throws {
        let value = String(repeating: "A", count: length)
        let daemon = try await RunningDaemon(tenants: 1, start: false)
        let now = Int64(Date().timeIntervalSince1970)
        let store = try BrokerHome(paths: BrokerPaths(home: daemon.home)).openStore()
        try store.save(StoredToken(key: TokenKey(tenant: "t0", region: "sg"), value: value, issuedAt: Double(now), expiresAt: Double(now + expiresIn)))
        try await daemon.start()
        let token = try await daemon.call("token.get", ["tenant": "t0"]).get()
        #expect(token["token"] != .string(value))
        #expect(daemon.simulator.isCurrent(token: try #require(token["token"]?.stringValue)))
        #expect(try await daemon.call("marketing.catalog.query", ["tenant": "t0"]).get()["items"] != nil)
        #expect(daemon.process?.isRunning == true)
        await daemon.shutdown()
    }

    /// `token.get` and a business call answer -32004 (nothing servable), while the daemon keeps serving.
    static func expectUnavailableButServing(_ daemon: RunningDaemon) async throws {
        for (method, params) in [("token.get", ["tenant": "t0"] as JSONValue), ("marketing.catalog.query", ["tenant": "t0"])] {
            guard case .failure(let error) = try await daemon.call(method, params) else {
                Issue.record("\(method) succeeded with a hostile token reply")
                continue
            }
            #expect(error.code == ErrorCode.upstreamUnavailable, "\(method): \(error)")
            #expect(error.message.contains("unreadable reply"), "\(method): \(error)")
        }
        #expect(try await daemon.call("broker.health").get()["status"] == "ok")
        #expect(daemon.process?.isRunning == true)
    }
}
