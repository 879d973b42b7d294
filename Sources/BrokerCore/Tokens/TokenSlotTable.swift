/// Every (tenant, region) the token cache has tracked, indexed by `TokenSlot`, with each tenant's
/// first slot found by name and the rest chained in region order. Serving a request costs one hash
/// and one short entry in one array: no per-tenant allocation to chase or retain.
///
/// A forgotten key keeps its slot, marked untracked, and gets it back if tracked again: a slot never
/// passes to another key, so the table grows only with keys not seen before.
struct TokenSlotTable {
    /// What a request reads, apart from the rest so that 100,000 of them stay few cache lines each.
    struct Serving {
        let region: String
        /// The tenant's next region in sorted order.
        var nextRegion: TokenSlot?
        var isTracked = true
        /// The token's `LiveToken.freshUntil`; -infinity while there is no token.
        var freshUntil = -Double.infinity
        var expiresAt = 0.0
        var fragments: ServingFragments?
    }

    /// What the token manager and the slower readers use: the key's token with the identity it was
    /// fetched or read under, held here and nowhere else.
    struct Entry {
        let key: TokenKey
        var held: HeldToken?

        var token: LiveToken? { self.held?.live }
    }

    private var firstSlot: [String: TokenSlot] = [:]
    private var serving: [Serving] = []
    private var entries: [Entry] = []
    /// Tenants with at least one tracked region.
    private(set) var trackedTenants = 0

    subscript(slot: TokenSlot) -> Entry {
        self.entries[Int(slot.index)]
    }

    func contains(_ slot: TokenSlot) -> Bool {
        self.entries.indices.contains(Int(slot.index))
    }

    /// The tracked slot for (tenant, region); with no region named, the tenant's only tracked one.
    func slot(tenant: String, region: String?) -> TokenSlot? {
        var cursor = self.firstSlot[tenant]
        var only: TokenSlot?
        while let slot = cursor {
            let index = Int(slot.index)
            if self.serving[index].isTracked {
                if let region {
                    if self.serving[index].region == region { return slot }
                } else {
                    guard only == nil else { return nil }
                    only = slot
                }
            }
            cursor = self.serving[index].nextRegion
        }
        return region == nil ? only : nil
    }

    /// Calls `body` with the slot's expiry and fragments if its token is fresh at `now`.
    func serve(_ slot: TokenSlot, now: Double, _ body: (_ expiresAt: Double, _ fragments: ServingFragments) -> Void) -> Bool {
        let index = Int(slot.index)
        guard now <= self.serving[index].freshUntil, let fragments = self.serving[index].fragments else { return false }
        body(self.serving[index].expiresAt, fragments)
        return true
    }

    /// The tenant's tracked regions, sorted.
    func regions(of tenant: String) -> [String] {
        self.chain(of: tenant).compactMap { self.serving[Int($0.index)].isTracked ? self.serving[Int($0.index)].region : nil }
    }

    mutating func setToken(_ held: HeldToken?, fragments: ServingFragments?, at slot: TokenSlot) {
        let index = Int(slot.index)
        self.entries[index].held = held
        self.serving[index].freshUntil = held?.live.freshUntil ?? -.infinity
        self.serving[index].expiresAt = held?.live.expiresAt ?? 0
        self.serving[index].fragments = fragments
    }

    /// Tracks `key` and returns its slot: the one it had before, if it was ever tracked.
    @discardableResult
    mutating func track(_ key: TokenKey) -> TokenSlot {
        let chain = self.chain(of: key.tenant)
        let tenantWasTracked = chain.contains { self.serving[Int($0.index)].isTracked }
        let slot: TokenSlot
        if let known = chain.first(where: { self.serving[Int($0.index)].region == key.region }) {
            guard !self.serving[Int(known.index)].isTracked else { return known }
            self.serving[Int(known.index)].isTracked = true
            slot = known
        } else {
            var before: TokenSlot?
            var cursor = self.firstSlot[key.tenant]
            while let slot = cursor, self.serving[Int(slot.index)].region < key.region {
                before = slot
                cursor = self.serving[Int(slot.index)].nextRegion
            }
            let added = TokenSlot(index: Int32(self.entries.count))
            self.entries.append(Entry(key: key))
            self.serving.append(Serving(region: key.region, nextRegion: cursor))
            if let before {
                self.serving[Int(before.index)].nextRegion = added
            } else {
                self.firstSlot[key.tenant] = added
            }
            slot = added
        }
        if !tenantWasTracked { self.trackedTenants += 1 }
        return slot
    }

    /// Tokens fresh at `now`, over every tracked slot.
    func freshCount(at now: Double) -> Int {
        self.serving.reduce(0) { $0 + (now <= $1.freshUntil ? 1 : 0) }
    }

    mutating func forget(_ key: TokenKey) {
        guard let slot = self.slot(tenant: key.tenant, region: key.region) else { return }
        self.setToken(nil, fragments: nil, at: slot)
        self.serving[Int(slot.index)].isTracked = false
        if self.regions(of: key.tenant).isEmpty { self.trackedTenants -= 1 }
    }

    /// Every slot the tenant has had, tracked or not, in region order.
    private func chain(of tenant: String) -> [TokenSlot] {
        var slots: [TokenSlot] = []
        var cursor = self.firstSlot[tenant]
        while let slot = cursor {
            slots.append(slot)
            cursor = self.serving[Int(slot.index)].nextRegion
        }
        return slots
    }
}
