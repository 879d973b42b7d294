import BrokerCore
import TestSupport
import Testing

/// The token manager alone, with an issuer that defers (another broker holds the key's lease): a
/// token adopted while the deferral was on its way plans the next refresh, not the deferral's retry.
@Suite struct DeferredRefreshTests {
    /// Defers every background refresh, once `gate` lets it answer.
    struct DeferringIssuer: TokenIssuing {
        let gate: ReadGate

        func issueToken(for key: TokenKey, basis: FetchBasis, purpose: FetchPurpose) async throws(TokenError) -> IssueOutcome {
            await self.gate.pass()
            return .deferred(retryAfter: 20)
        }
    }

    @Test func aTokenAdoptedWhileADeferralIsOnItsWayIsNotRefreshedEarly() async throws {
        let clock = ManualClock()
        let fixture = try await TokenEngineFixture(clock: clock)
        let key = try fixture.addTenants(1)[0]
        let now = clock.unixNow()
        // 80% through its life: its background refresh is due at once.
        try fixture.store.save(StoredToken(key: key, value: "old-token-value", issuedAt: now - 80, expiresAt: now + 20))
        let gate = ReadGate()
        await gate.close()
        let manager = TokenManager(
            store: AsyncSQLiteStore(fixture.store),
            issuer: DeferringIssuer(gate: gate),
            clock: clock,
            policy: TokenPolicy(),
            logger: fixture.logger
        )
        try await manager.start()
        let refresher = Task { try await manager.run() }
        #expect(await eventually(timeout: 60) { await gate.waitingCount == 1 }, "the background refresh asked the issuer")
        let revision = try #require(try fixture.store.credentialRevisions()[key])
        await manager.adoptStored(
            StoredToken(key: key, value: "new-token-value", issuedAt: now, expiresAt: now + 100, revision: revision, generation: 2)
        )
        await gate.open()
        #expect(await eventually(timeout: 60) { await manager.activity().inFlight == 0 }, "the deferral came back")
        let status = try #require(await manager.statuses().first)
        let next = try #require(status.nextRefreshAt)
        #expect(next >= now + 50 - 5, "planned from the adopted token (its window starts at 50 s), not at the deferral's 20 s: \(next - now)")
        #expect(manager.cache.freshToken(for: key, now: clock.monotonicNow())?.value == "new-token-value")
        refresher.cancel()
        await fixture.shutdown()
    }
}
