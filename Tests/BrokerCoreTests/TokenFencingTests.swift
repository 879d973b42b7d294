import BrokerCore
import SobotSimulator
import TestSupport
import Testing

/// A fetch's result carries the credential revision it was started under, and lands only while that
/// revision is current: a token fetched for a credential replaced meanwhile is neither served nor
/// stored. (The cluster backend runs the same checks in `ClusterTokenTests`.)
@Suite struct TokenFencingTests {
    @Test func aFetchStartedBeforeACredentialChangeDoesNotLand() async throws {
        let fixture = try await TokenEngineFixture()
        let key = try fixture.addTenants(1)[0]
        let manager = fixture.makeManager()
        try await manager.start()
        fixture.simulator.fault = .latency(milliseconds: 800)
        async let served = manager.token(for: key)
        #expect(await eventually(timeout: 10) { fixture.simulator.tokenRequestCount == 1 }, "the first fetch is in flight")
        fixture.simulator.register(appid: "replacement", appKey: "replacement-secret")
        try fixture.store.upsert(
            [TenantDefinition(id: key.tenant, name: nil, credentials: [CredentialDefinition(region: key.region, appid: "replacement", appKey: "replacement-secret")])],
            now: Int64(fixture.clock.unixNow())
        )
        try await manager.reload()
        fixture.simulator.fault = .none
        let token = try await served.value
        #expect(fixture.simulator.appid(ofToken: token) == "replacement", "the caller gets the new credential's token")
        #expect(fixture.simulator.tokenRequestTimes(appid: "replacement").count == 1)
        #expect(try fixture.store.token(for: key, expiringAfter: Int64(fixture.clock.unixNow()))?.value == token, "only the new credential's token is stored")
        #expect(try await manager.token(for: key).value == token)
        await fixture.shutdown()
    }

    @Test func reloadsWhileAFetchIsInFlightNeitherDropNorRepeatIt() async throws {
        let fixture = try await TokenEngineFixture()
        let key = try fixture.addTenants(1)[0]
        let manager = fixture.makeManager()
        try await manager.start()
        let first = try await manager.token(for: key).value
        fixture.simulator.fault = .latency(milliseconds: 5000)
        async let refreshed = manager.invalidate(key, reported: first)
        #expect(await eventually(timeout: 10) { fixture.simulator.tokenRequestCount == 2 }, "the refresh is in flight")
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
}
