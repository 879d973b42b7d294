import BrokerCore
import SobotSimulator
import TestSupport
import Testing

/// `get_token` revokes the token it replaces, so the stored token must be withdrawn before the call:
/// a token that could not be persisted afterwards must never come back after a restart as the one
/// to serve. The simulator revokes superseded tokens, so "current" is checked against it.
@Suite struct TokenPersistenceTests {
    @Test func aTokenThatCouldNotBeStoredLeavesNoSupersededTokenToServeAfterARestart() async throws {
        let fixture = try await TokenEngineFixture()
        let key = try fixture.addTenants(1)[0]
        let manager = fixture.makeManager()
        try await manager.start()
        let first = try await manager.token(for: key).value
        let before = fixture.simulator.tokenRequestCount

        // The upstream answers slowly; while it does, another connection takes the write lock, so
        // the new token cannot be saved (the store gives up after its 5 s busy timeout).
        fixture.simulator.fault = .latency(milliseconds: 2500)
        let refresh = Task { try await manager.invalidate(key, reported: first).value }
        let sent = await eventually(timeout: 60, interval: 0.005) { fixture.simulator.tokenRequestCount > before }
        try #require(sent)
        let blocker = try SQLiteConnection(path: fixture.directory.file("broker.db"))
        try blocker.execute("BEGIN IMMEDIATE")
        let second = try await refresh.value
        try blocker.execute("ROLLBACK")
        fixture.simulator.fault = .none
        #expect(second != first)
        #expect(!fixture.simulator.isCurrent(token: first), "get_token revoked the token it replaced")

        let reopened = try SQLiteStore(path: fixture.directory.file("broker.db"), sealer: SecretSealer(keyring: fixture.keyring))
        let restarted = fixture.makeManager(store: reopened)
        try await restarted.start()
        #expect(restarted.cache.freshToken(for: key, now: fixture.clock.monotonicNow())?.value != first)
        let served = try await restarted.token(for: key).value
        #expect(served != first, "a restart served the token that get_token had already revoked")
        #expect(fixture.simulator.isCurrent(token: served))
        await fixture.shutdown()
    }

    @Test func whenTheWithdrawalCannotBeWrittenNoTokenIsFetchedAndTheValidOneIsServed() async throws {
        let clock = ManualClock()
        let fixture = try await TokenEngineFixture(tokenTTL: 100, clock: clock)
        let key = try fixture.addTenants(1)[0]
        let manager = fixture.makeManager()
        try await manager.start()
        let first = try await manager.token(for: key)
        let before = fixture.simulator.tokenRequestCount

        let blocker = try SQLiteConnection(path: fixture.directory.file("broker.db"))
        try blocker.execute("BEGIN IMMEDIATE")
        clock.advance(by: 95)  // inside the serving margin: a refresh is due before serving again
        #expect(try await manager.token(for: key) == first, "the unexpired token is still served")
        await #expect {
            _ = try await manager.invalidate(key, reported: first.value)
        } throws: { error in
            guard case .storage = error as? TokenError else { return false }
            return true
        }
        #expect(fixture.simulator.tokenRequestCount == before, "get_token was called although its intent was not recorded")
        #expect(fixture.simulator.isCurrent(token: first.value))
        try blocker.execute("ROLLBACK")

        // The stored token was never superseded: a restart holds it again, without an upstream call.
        let reopened = try SQLiteStore(path: fixture.directory.file("broker.db"), sealer: SecretSealer(keyring: fixture.keyring))
        let restarted = fixture.makeManager(store: reopened)
        try await restarted.start()
        let held = await restarted.statuses()
        #expect(held.map(\.state) == [.stale] && held.first?.expiresAt == first.expiresAtUnix, "\(held)")
        #expect(fixture.simulator.tokenRequestCount == before)
        await fixture.shutdown()
    }
}
