import Synchronization

/// A (tenant, region)'s place in the token cache: a dense number given when the key is first
/// tracked and never given to another key while the process lives, so what is counted per slot
/// (the audit log's fast-path counts) can be named later without hashing names on the hot path.
public struct TokenSlot: Hashable, Sendable {
    public let index: Int32

    public init(index: Int32) {
        self.index = index
    }
}

/// The lock-protected read side of the token engine: what `token.get` consults on its hot path
/// without an actor hop, SQLite or the network.
///
/// Only the token manager writes it; readers get a token only while it is fresh.
public final class TokenCache: Sendable {
    public typealias Encoder = @Sendable (TokenKey, LiveToken) -> ServingFragments

    private let contents = Mutex(TokenSlotTable())
    private let encoder: Encoder?

    /// - Parameter encoder: precomputes each token's `ServingFragments` once, when it is stored.
    public init(encoder: Encoder? = nil) {
        self.encoder = encoder
    }

    /// The cached token for `key` if it still has at least its serving margin left at `now`.
    public func freshToken(for key: TokenKey, now: Double) -> LiveToken? {
        self.servable(tenant: key.tenant, region: key.region, now: now)?.token
    }

    /// The fresh token a request for (tenant, region?) gets, resolved and read under one lock. The
    /// region may be omitted when the tenant has only one.
    public func servable(tenant: String, region: String?, now: Double) -> (key: TokenKey, token: LiveToken)? {
        self.contents.withLock { table in
            guard let slot = table.slot(tenant: tenant, region: region), let token = table[slot].token, token.isFresh(at: now) else {
                return nil
            }
            return (table[slot].key, token)
        }
    }

    /// The same read for `token.get`'s hot path: calls `body` under the lock with the token's expiry
    /// (monotonic) and its serving fragments, so nothing is copied or retained per request, and
    /// returns the slot served; nil, without calling `body`, when there is no fresh token.
    /// `body` holds the lock: it should only copy bytes. (Not generic, like `withHeadAndTail`.)
    public func serve(
        tenant: String,
        region: String?,
        now: Double,
        _ body: (_ expiresAt: Double, _ fragments: ServingFragments) -> Void
    ) -> TokenSlot? {
        self.contents.withLock { table in
            guard let slot = table.slot(tenant: tenant, region: region), table.serve(slot, now: now, body) else { return nil }
            return slot
        }
    }

    /// The key a slot was given to, whether or not it is still tracked.
    public func key(of slot: TokenSlot) -> TokenKey? {
        self.contents.withLock { table in table.contains(slot) ? table[slot].key : nil }
    }

    /// The regions a tenant has credentials in, sorted; empty for an unknown tenant.
    public func regions(of tenant: String) -> [String] {
        self.contents.withLock { $0.regions(of: tenant) }
    }

    public var tenantCount: Int { self.contents.withLock { $0.trackedTenants } }

    /// The token held at `slot`, with the identity it was fetched under: the token engine's one
    /// record of it (the token manager keeps none of its own).
    func held(at slot: TokenSlot) -> HeldToken? {
        self.contents.withLock { table in table.contains(slot) ? table[slot].held : nil }
    }

    /// How many tracked keys hold a token fresh at `now`.
    func freshCount(at now: Double) -> Int {
        self.contents.withLock { $0.freshCount(at: now) }
    }

    /// Makes `token` the one served at `slot`, with its reply fragments encoded outside the lock.
    func store(_ token: HeldToken, at slot: TokenSlot) {
        guard let key = self.key(of: slot) else { return }
        let fragments = self.encoder?(key, token.live)
        self.contents.withLock { table in
            table.setToken(token, fragments: fragments, at: slot)
        }
    }

    /// Stops serving the token at `slot` (its credential changed) while keeping the key known.
    func clearToken(at slot: TokenSlot) {
        self.contents.withLock { table in
            guard table.contains(slot) else { return }
            table.setToken(nil, fragments: nil, at: slot)
        }
    }

    /// Tracks `key`: its slot, the same one each time it is tracked again.
    @discardableResult
    func track(_ key: TokenKey) -> TokenSlot {
        self.contents.withLock { $0.track(key) }
    }

    func forget(_ key: TokenKey) {
        self.contents.withLock { $0.forget(key) }
    }
}
