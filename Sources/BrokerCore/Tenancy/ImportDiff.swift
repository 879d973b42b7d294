/// What importing a file would change in the store, tenant by tenant, in the file's order: what
/// `tenant import --dry-run` shows. It holds no key: whether an app_key changes is decided by the
/// store comparing keys in memory (`BrokerStore.credentialsWithSameAppKey`).
public struct ImportDiff: Sendable, Equatable {
    /// Tenants the import adds or changes, and tenants it leaves unchanged but that have regions
    /// the file does not name.
    public var tenants: [TenantDiff] = []
    /// Tenants in the file whose stored name and credentials already match it.
    public var unchangedTenants = 0

    /// Compares `definitions` (a valid import file) with `stored` (the store's summaries).
    /// `sameAppKeys` are the stored credentials whose app_key equals the file's.
    public init(definitions: [TenantDefinition], stored: [TenantSummary], sameAppKeys: Set<TokenKey>) {
        let storedByID = Dictionary(stored.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for definition in definitions {
            let diff = TenantDiff(definition, stored: storedByID[definition.id], sameAppKeys: sameAppKeys)
            if !diff.changesSomething { self.unchangedTenants += 1 }
            if diff.changesSomething || !diff.regionsLeftAlone.isEmpty { self.tenants.append(diff) }
        }
    }
}

/// How one tenant of the file compares with what is stored.
public struct TenantDiff: Sendable, Equatable {
    public let id: String
    /// The tenant is not stored yet.
    public let isNew: Bool
    /// The name the file gives, if any.
    public let name: String?
    /// The stored name and the file's, when the file sets a different one (a file without a name
    /// keeps the stored one).
    public let renamed: TenantRename?
    /// The file's credentials that add or change something, in the file's order.
    public let credentials: [CredentialDiff]
    /// Stored regions the file does not name: an import upserts, so they stay as they are.
    public let regionsLeftAlone: [String]

    public var changesSomething: Bool { self.isNew || self.renamed != nil || !self.credentials.isEmpty }

    init(_ definition: TenantDefinition, stored: TenantSummary?, sameAppKeys: Set<TokenKey>) {
        self.id = definition.id
        self.isNew = stored == nil
        self.name = definition.name
        if let name = definition.name, let stored, stored.name != name {
            self.renamed = TenantRename(from: stored.name, to: name)
        } else {
            self.renamed = nil
        }
        let storedRegions = Dictionary((stored?.regions ?? []).map { ($0.region, $0) }, uniquingKeysWith: { first, _ in first })
        self.credentials = definition.credentials.compactMap { credential in
            let key = TokenKey(tenant: definition.id, region: credential.region)
            return CredentialDiff(credential, stored: storedRegions[credential.region], sameAppKey: sameAppKeys.contains(key))
        }
        let named = Set(definition.credentials.map(\.region))
        self.regionsLeftAlone = (stored?.regions ?? []).map(\.region).filter { !named.contains($0) }.sorted()
    }
}

/// A tenant's stored name (nil when it has none) and the file's.
public struct TenantRename: Sendable, Equatable {
    public let from: String?
    public let to: String
}

/// How one credential of the file compares with the stored one.
public struct CredentialDiff: Sendable, Equatable {
    public let region: String
    public let appid: String
    /// The region has no stored credential yet.
    public let isNew: Bool
    /// The stored appid, when the file's differs.
    public let previousAppID: String?
    public let appKeyChanged: Bool
    /// A stored token goes: it was fetched for the previous appid.
    public let dropsStoredToken: Bool

    /// Nil when the credential is stored exactly as the file has it.
    init?(_ credential: CredentialDefinition, stored: TenantSummary.RegionSummary?, sameAppKey: Bool) {
        self.region = credential.region
        self.appid = credential.appid
        self.isNew = stored == nil
        let appidChanged = stored.map { $0.appid != credential.appid } ?? false
        self.previousAppID = appidChanged ? stored?.appid : nil
        self.appKeyChanged = stored != nil && !sameAppKey
        self.dropsStoredToken = appidChanged && stored?.tokenExpiresAt != nil
        guard self.isNew || appidChanged || self.appKeyChanged else { return nil }
    }
}
