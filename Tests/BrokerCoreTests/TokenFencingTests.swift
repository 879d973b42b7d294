import BrokerCore
import SobotSimulator
import TestSupport
import Testing

/// A fetch's result carries the credential revision it was started under, and lands only while that
/// revision is current: a token fetched for a credential replaced meanwhile is neither served nor
/// stored. (The cluster backend runs the same checks in `ClusterTokenTests`.)
@Suite struct TokenFencingTests {
    /// How the credential changes while the first fetch is in flight.
    enum CredentialChange: CaseIterable, Sendable {
        case replaced
        /// Removed and added again: it gets a revision above any it had, though the key is the same.
        case removedAndAddedAgain
    }

    @Test(arguments: CredentialChange.allCases)
    func aFetchStartedBeforeACredentialChangeDoesNotLand(_ change: CredentialChange) async throws {
        let fixture = try await TokenEngineFixture()
        let key = try fixture.addTenants(1)[0]
        let manager = fixture.makeManager()
        try await manager.start()
        let before = try fixture.store.credentialRevisions()[key] ?? 0
        fixture.simulator.fault = .latency(milliseconds: 800)
        async let served = manager.token(for: key)
        #expect(await eventually(timeout: 30) { fixture.simulator.tokenRequestCount == 1 }, "the first fetch is in flight")
        fixture.simulator.register(appid: "replacement", appKey: "replacement-secret")
        if change == .removedAndAddedAgain { _ = try fixture.store.remove(tenant: key.tenant, region: nil) }
        try fixture.store.upsert(
            [TenantDefinition(id: key.tenant, name: nil, credentials: [CredentialDefinition(region: key.region, appid: "replacement", appKey: "replacement-secret")])],
            now: Int64(fixture.clock.unixNow())
        )
        #expect(try fixture.store.credentialRevisions()[key] ?? 0 > before)
        try await manager.reload()
        fixture.simulator.fault = .none
        let token = try await served.value
        #expect(fixture.simulator.appid(ofToken: token) == "replacement", "the caller gets the new credential's token")
        #expect(try fixture.store.token(for: key, expiringAfter: Int64(fixture.clock.unixNow()))?.value == token, "only the new credential's token is stored")
        #expect(try await manager.token(for: key).value == token)
        try await Task.sleep(for: .milliseconds(300))
        #expect(fixture.simulator.tokenRequestTimes(appid: "replacement").count == 1, "fetched once for it, not in a loop")
        await fixture.shutdown()
    }

    @Test func reloadsWhileAFetchIsInFlightNeitherDropNorRepeatIt() async throws {
        let fixture = try await TokenEngineFixture()
        let key = try fixture.addTenants(1)[0]
        let manager = fixture.makeManager()
        try await manager.start()
        let first = try await manager.token(for: key).value
        // Long enough that the reloads below finish first even on a loaded machine (with 5 s, the
        // refresh once landed before the check in a full parallel run), and under the client's 10 s
        // read timeout.
        fixture.simulator.fault = .latency(milliseconds: 8000)
        async let refreshed = manager.invalidate(key, reported: first)
        #expect(await eventually(timeout: 30) { fixture.simulator.tokenRequestCount == 2 }, "the refresh is in flight")
        // Other tenants come and go meanwhile; every reload reads while the refresh is in flight.
        try fixture.addTenants(3, prefix: "other")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<5 { group.addTask { try await manager.reload() } }
            try await group.waitForAll()
        }
        #expect(manager.cache.freshToken(for: key, now: fixture.clock.monotonicNow())?.value == first, "the token in use is still served")
        let second = try await refreshed.value
        try await manager.reload()
        #expect(try await manager.token(for: key).value == second)
        #expect(try fixture.store.token(for: key, expiringAfter: Int64(fixture.clock.unixNow()))?.value == second)
        #expect(fixture.simulator.tokenRequestTimes(appid: "tapp0").count == 2, "one refresh, not repeated")
        await fixture.shutdown()
    }

    /// The interleaving forced: a start is held just after reading a stored token while a newer one
    /// is fetched and served; when it goes on, it must not put the older (revoked) one back.
    @Test func aReloadHeldAfterItsReadKeepsATokenFetchedMeanwhile() async throws {
        let fixture = try await TokenEngineFixture()
        let key = try fixture.addTenants(1)[0]
        let first = fixture.makeManager()
        try await first.start()
        let old = try await first.token(for: key).value
        let gate = ReadGate()
        let manager = TokenManager(
            store: GatedStore(AsyncSQLiteStore(fixture.store), gate: gate),
            issuer: SobotTokenIssuer(store: fixture.store, client: fixture.client, clock: fixture.clock, logger: fixture.logger),
            clock: fixture.clock,
            policy: TokenPolicy(),
            logger: fixture.logger
        )
        await gate.close()
        async let started: Void = manager.start()
        #expect(await eventually(timeout: 60) { await gate.waitingCount == 1 }, "the start is held after reading the stored token")
        let fetched = try await manager.token(for: key).value
        #expect(fetched != old)
        await gate.open()
        try await started
        #expect(manager.cache.freshToken(for: key, now: fixture.clock.monotonicNow())?.value == fetched, "the older token read before is not put back")
        try await manager.reload()
        #expect(try await manager.token(for: key).value == fetched)
        #expect(try fixture.store.token(for: key, expiringAfter: Int64(fixture.clock.unixNow()))?.generation == 2)
        #expect(fixture.simulator.tokenRequestCount == 2, "one fetch each, none repeated")
        await fixture.shutdown()
    }
}
