import BrokerCore
import Foundation
import SobotSimulator
import TestSupport
import Testing

/// A lying upstream, over real HTTP: `get_token` replies with lifetimes no clock can hold and tokens
/// no HTTP header can carry are unreadable replies, never a trap or a poisoned token engine.
@Suite struct HostileUpstreamTests {
    static func fetch(_ fixture: TokenEngineFixture, appid: String = "tapp0", appKey: String = "key-t-0-secret") async throws(SobotError) -> IssuedToken {
        try await fixture.client.fetchToken(region: TokenEngineFixture.region, appid: appid, appKey: appKey, createTime: Int64(SystemClock().unixNow()))
    }

    static func expectUnreadable(_ fixture: TokenEngineFixture, mentioning field: String) async {
        do {
            let issued = try await Self.fetch(fixture)
            Issue.record("accepted a hostile reply: lifetime \(issued.lifetime), \(issued.value.utf8.count) bytes")
        } catch {
            guard case .unavailable(let reason) = error else {
                Issue.record("not unavailable: \(error)")
                return
            }
            #expect(reason.contains("unreadable reply") && reason.contains(field), "\(reason)")
        }
    }

    /// As JSON text: numbers and numeric strings beyond Int64, beyond a week, not positive, not finite.
    @Test(arguments: [
        "1e308", #""1e308""#, "9.3e18", "9300000000000000000", #""9.3e18""#, "99999999999", "123456789012345678901234567890",
        "604801", "0.5", "0", "-7200", #""inf""#, #""nan""#, #""""#, "null", "true",
    ])
    func aLifetimeOutsideOneSecondToAWeekIsUnreadable(_ expiresIn: String) async throws {
        let fixture = try await TokenEngineFixture()
        try fixture.addTenants(1)
        fixture.simulator.fault = try #require(SimulatorFault(name: "expires_in:" + expiresIn))
        await Self.expectUnreadable(fixture, mentioning: "expires_in")
        await fixture.shutdown()
    }

    @Test(arguments: ["1", "604800", #""86400""#, "7200.5"])
    func aLifetimeFromOneSecondToAWeekIsAccepted(_ expiresIn: String) async throws {
        let fixture = try await TokenEngineFixture()
        try fixture.addTenants(1)
        fixture.simulator.fault = try #require(SimulatorFault(name: "expires_in:" + expiresIn))
        let issued = try await Self.fetch(fixture)
        #expect(IssuedToken.lifetimeRange.contains(issued.lifetime))
        await fixture.shutdown()
    }

    @Test(arguments: [
        SimulatorFault.tokenLength(4097), .tokenLength(70_000), .token("abc\r\ndef"), .token("abc def"), .token("abc\u{0}def"),
        .token("abc\u{7f}"), .token("tökén"),
    ])
    func anOversizedOrUnprintableTokenIsUnreadable(_ fault: SimulatorFault) async throws {
        let fixture = try await TokenEngineFixture()
        try fixture.addTenants(1)
        fixture.simulator.fault = fault
        await Self.expectUnreadable(fixture, mentioning: "item.token")
        await fixture.shutdown()
    }

    @Test func aTokenOfExactlyFourKiBIsAccepted() async throws {
        let fixture = try await TokenEngineFixture()
        try fixture.addTenants(1)
        fixture.simulator.fault = .tokenLength(4096)
        #expect(try await Self.fetch(fixture).value.utf8.count == 4096)
        await fixture.shutdown()
    }

    /// The whole engine: the issuer's arithmetic never sees the hostile lifetime, the failure backs off.
    @Test(arguments: ["1e308", #""1e308""#, "9.3e18", "99999999999"])
    func theTokenEngineReportsAHostileLifetimeAsUnavailable(_ expiresIn: String) async throws {
        let clock = ManualClock()
        let fixture = try await TokenEngineFixture(clock: clock)
        let key = try fixture.addTenants(1)[0]
        fixture.simulator.fault = try #require(SimulatorFault(name: "expires_in:" + expiresIn))
        let manager = fixture.makeManager()
        try await manager.start()
        await #expect(throws: TokenError.upstream(.unavailable("unreadable reply: expires_in is not a number of seconds from 1 to 604800"))) {
            _ = try await manager.token(for: key)
        }
        let status = try #require(await manager.statuses().first)
        #expect(status.state == .missing && status.consecutiveFailures == 1)
        #expect(try fixture.store.token(for: key, expiringAfter: Int64(clock.unixNow())) == nil, "nothing was persisted")
        await fixture.shutdown()
    }

    /// A row as an older broker (or a hand) may have written it; described briefly in test output.
    struct StoredRow: Sendable, CustomTestStringConvertible {
        var value: String
        var issuedAgo: Int64 = 0
        var expiresIn: Int64 = 7200

        var testDescription: String { "\(self.value.utf8.count)-byte token issued \(self.issuedAgo) s ago, expiring in \(self.expiresIn) s" }
    }

    /// A token an older broker persisted (or one written by hand) that breaks the rules is not served.
    @Test(arguments: [
        StoredRow(value: String(repeating: "A", count: 70_000)), StoredRow(value: "abc\r\ndef"), StoredRow(value: "abc def"),
        StoredRow(value: "good-token", expiresIn: 99_999_999_999), StoredRow(value: "good-token", expiresIn: 604_801),
        StoredRow(value: "good-token", issuedAgo: -99_999_999_999), StoredRow(value: "good-token", issuedAgo: 1_000_000),
    ])
    func aStoredTokenBreakingTheRulesIsTreatedAsMissing(_ row: StoredRow) async throws {
        let fixture = try await TokenEngineFixture()
        let key = try fixture.addTenants(1)[0]
        let now = Int64(SystemClock().unixNow())
        try fixture.store.save(StoredToken(key: key, value: row.value, issuedAt: Double(now - row.issuedAgo), expiresAt: Double(now + row.expiresIn)))
        #expect(try fixture.store.token(for: key, expiringAfter: now) == nil)
        let loaded = try fixture.store.loadTokens(expiringAfter: now)
        #expect(loaded.tokens.isEmpty && loaded.unreadable.isEmpty, "missing, not unreadable: it opens")
        try fixture.store.save(StoredToken(key: key, value: "good-token", issuedAt: Double(now), expiresAt: Double(now + 7200)))
        #expect(try fixture.store.token(for: key, expiringAfter: now)?.value == "good-token", "a sound token still is")
        await fixture.shutdown()
    }

    @Test func anUpstreamMessageIsOneBoundedLine() throws {
        let body = Array(#"{"ret_code":"900003","ret_msg":"bad sign\nlevel=critical forged \#(String(repeating: "x", count: 5000))"}"#.utf8)
        #expect(throws: SobotError.self) { try SobotReply.interpret(status: 200, body: body) }
        do {
            _ = try SobotReply.interpret(status: 200, body: body)
        } catch {
            guard case .rejected(let code, let message) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(code == "900003")
            #expect(!message.contains("\n") && message.count <= 257 && message.hasPrefix("bad sign level=critical"), "\(message)")
        }
    }
}
