import Synchronization

/// Bytes a server precomputes for each cached token, around the one part that changes per request
/// (so serving costs two copies, not an encoding). Opaque to the token engine.
///
/// Head and tail share one array: one allocation per cached token, not two.
public struct ServingFragments: Sendable {
    private let bytes: [UInt8]
    private let headCount: Int

    public init(head: [UInt8], tail: [UInt8]) {
        // Exactly sized: `head + tail` would leave room for growth in each of 100,000 copies.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(head.count + tail.count)
        bytes.append(contentsOf: head)
        bytes.append(contentsOf: tail)
        self.bytes = bytes
        self.headCount = head.count
    }

    /// Lends the head and tail bytes without copying or retaining them. Not generic: called across
    /// modules on the hot path, a generic would be looked up at run time rather than specialised.
    public func withHeadAndTail(_ body: (_ head: UnsafeRawBufferPointer, _ tail: UnsafeRawBufferPointer) -> Void) {
        self.bytes.withUnsafeBytes { bytes in
            body(UnsafeRawBufferPointer(rebasing: bytes[..<self.headCount]), UnsafeRawBufferPointer(rebasing: bytes[self.headCount...]))
        }
    }

    public var count: Int { self.bytes.count }
}

/// The lock-protected read side of the token engine: what `token.get` consults on its hot path
/// without an actor hop, SQLite or the network.
///
/// Only the token manager writes it; readers get a token only while it is fresh.
public final class TokenCache: Sendable {
    public typealias Encoder = @Sendable (TokenKey, LiveToken) -> ServingFragments

    /// One region of a tenant, with its token once there is one.
    private struct RegionSlot {
        var region: String
        var token: LiveToken?
        var fragments: ServingFragments?
    }

    /// Keyed by tenant alone, with its few regions in a sorted array: a request costs one hash.
    private let contents = Mutex([String: [RegionSlot]]())
    private let encoder: Encoder?

    /// - Parameter encoder: precomputes each token's `ServingFragments` once, when it is stored.
    public init(encoder: Encoder? = nil) {
        self.encoder = encoder
    }

    /// The cached token for `key` if it still has at least its serving margin left at `now`.
    public func freshToken(for key: TokenKey, now: Double) -> LiveToken? {
        self.contents.withLock { tenants in
            guard let token = tenants[key.tenant]?.first(where: { $0.region == key.region })?.token, token.isFresh(at: now) else {
                return nil
            }
            return token
        }
    }

    /// The fresh token a request for (tenant, region?) gets, resolved and read under one lock. The
    /// region may be omitted when the tenant has only one.
    public func servable(tenant: String, region: String?, now: Double) -> (key: TokenKey, token: LiveToken)? {
        self.contents.withLock { tenants in
            guard let slots = tenants[tenant], let index = Self.slotIndex(of: region, in: slots),
                let token = slots[index].token, token.isFresh(at: now)
            else { return nil }
            return (TokenKey(tenant: tenant, region: slots[index].region), token)
        }
    }

    /// The same read for `token.get`'s hot path: calls `body` under the lock with the token's expiry
    /// (monotonic) and its serving fragments, so nothing is copied or retained per request, and
    /// returns the region served; nil, without calling `body`, when there is no fresh token.
    /// `body` holds the lock: it should only copy bytes. (Not generic, like `withHeadAndTail`.)
    public func serve(
        tenant: String,
        region: String?,
        now: Double,
        _ body: (_ expiresAt: Double, _ fragments: ServingFragments) -> Void
    ) -> String? {
        self.contents.withLock { tenants in
            guard let slots = tenants[tenant], let index = Self.slotIndex(of: region, in: slots),
                let fragments = slots[index].fragments, let token = slots[index].token, token.isFresh(at: now)
            else { return nil }
            body(token.expiresAt, fragments)
            return slots[index].region
        }
    }

    /// The named region's slot, or the only one when no region is named.
    private static func slotIndex(of region: String?, in slots: [RegionSlot]) -> Int? {
        guard let region else { return slots.count == 1 ? 0 : nil }
        return slots.firstIndex { $0.region == region }
    }

    /// The regions a tenant has credentials in, sorted; empty for an unknown tenant.
    public func regions(of tenant: String) -> [String] {
        self.contents.withLock { $0[tenant]?.map(\.region) ?? [] }
    }

    public var tenantCount: Int { self.contents.withLock { $0.count } }

    func store(_ token: LiveToken, for key: TokenKey) {
        let fragments = self.encoder?(key, token)
        self.contents.withLock { tenants in
            guard let index = tenants[key.tenant]?.firstIndex(where: { $0.region == key.region }) else { return }
            tenants[key.tenant]![index].token = token
            tenants[key.tenant]![index].fragments = fragments
        }
    }

    /// Stops serving `key`'s token (its credential changed) while keeping the key known.
    func clearToken(_ key: TokenKey) {
        self.contents.withLock { tenants in
            guard let index = tenants[key.tenant]?.firstIndex(where: { $0.region == key.region }) else { return }
            tenants[key.tenant]![index].token = nil
            tenants[key.tenant]![index].fragments = nil
        }
    }

    func track(_ key: TokenKey) {
        self.contents.withLock { tenants in
            var slots = tenants[key.tenant] ?? []
            guard !slots.contains(where: { $0.region == key.region }) else { return }
            slots.append(RegionSlot(region: key.region))
            slots.sort { $0.region < $1.region }
            tenants[key.tenant] = slots
        }
    }

    func forget(_ key: TokenKey) {
        self.contents.withLock { tenants in
            let remaining = (tenants[key.tenant] ?? []).filter { $0.region != key.region }
            tenants[key.tenant] = remaining.isEmpty ? nil : remaining
        }
    }
}
