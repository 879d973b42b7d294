import Testing

@testable import BrokerCore

/// The token cache's slot table on its own: lookups by tenant and optional region, and slots that
/// keep naming their key after it is forgotten.
@Suite struct TokenCacheTests {
    static let token = LiveToken(value: "v", issuedAt: 0, expiresAt: 1_000, expiresAtUnix: 1_800_000_000)
    static let held = HeldToken(live: token, revision: 1, generation: 1)

    @Test func aRegionIsNeededOnlyWhileTheTenantHasMoreThanOne() {
        let cache = TokenCache()
        let (sg, us) = (TokenKey(tenant: "acme", region: "sg"), TokenKey(tenant: "acme", region: "us"))
        cache.store(Self.held, at: cache.track(us))
        #expect(cache.servable(tenant: "acme", region: nil, now: 10)?.key == us)
        cache.store(Self.held, at: cache.track(sg))
        #expect(cache.regions(of: "acme") == ["sg", "us"], "sorted, whatever the order tracked")
        #expect(cache.servable(tenant: "acme", region: nil, now: 10) == nil)
        #expect(cache.servable(tenant: "acme", region: "sg", now: 10)?.key == sg)
        #expect(cache.servable(tenant: "acme", region: "eu", now: 10) == nil)
        cache.forget(us)
        #expect(cache.servable(tenant: "acme", region: nil, now: 10)?.key == sg)
        #expect(cache.servable(tenant: "acme", region: "us", now: 10) == nil)
        #expect(cache.tenantCount == 1)
        cache.forget(sg)
        #expect(cache.tenantCount == 0 && cache.regions(of: "acme").isEmpty)
    }

    @Test func onlyAFreshTokenIsServed() {
        let cache = TokenCache()
        let key = TokenKey(tenant: "acme", region: "sg")
        let slot = cache.track(key)
        #expect(cache.freshToken(for: key, now: 10) == nil, "tracked, no token yet")
        cache.store(Self.held, at: slot)
        #expect(cache.held(at: slot) == Self.held, "the identity it was fetched under is kept with it")
        #expect(cache.freshToken(for: key, now: 900) == Self.token)
        #expect(cache.freshToken(for: key, now: 950) == nil, "inside the 60 s serving margin")
        cache.clearToken(at: slot)
        #expect(cache.freshToken(for: key, now: 10) == nil)
        #expect(cache.regions(of: "acme") == ["sg"], "cleared, still tracked")
    }

    /// The audit log names counted slots up to a minute later: a slot never passes to another key.
    @Test func aForgottenKeysSlotStillNamesItAndComesBackWithIt() throws {
        let cache = TokenCache(encoder: { _, _ in ServingFragments(head: [1], tail: [2]) })
        let acme = TokenKey(tenant: "acme", region: "sg")
        cache.store(Self.held, at: cache.track(acme))
        let slot = try #require(cache.serve(tenant: "acme", region: nil, now: 10) { _, fragments in #expect(fragments.count == 2) })
        cache.forget(acme)
        #expect(cache.serve(tenant: "acme", region: nil, now: 10) { _, _ in Issue.record("served a forgotten key") } == nil)
        let globex = TokenKey(tenant: "globex", region: "sg")
        cache.store(Self.held, at: cache.track(globex))
        #expect(cache.key(of: slot) == acme)
        #expect(cache.serve(tenant: "globex", region: nil, now: 10) { _, _ in } != slot)
        #expect(cache.track(acme) == slot, "tracked again, in its old slot")
        #expect(cache.freshToken(for: acme, now: 10) == nil, "tracked again without its old token")
        cache.store(Self.held, at: slot)
        #expect(cache.serve(tenant: "acme", region: "sg", now: 10) { _, _ in } == slot)
        #expect(cache.tenantCount == 2)
        #expect(cache.key(of: TokenSlot(index: 2)) == nil)
    }
}
