/// What an upsert changed (or, for a dry run, would change).
public struct UpsertReport: Sendable, Equatable {
    public var tenantsAdded = 0
    public var tenantsUpdated = 0
    public var credentialsWritten = 0

    public init(tenantsAdded: Int = 0, tenantsUpdated: Int = 0, credentialsWritten: Int = 0) {
        self.tenantsAdded = tenantsAdded
        self.tenantsUpdated = tenantsUpdated
        self.credentialsWritten = credentialsWritten
    }
}

/// Told how many tenants an upsert has written so far, on whichever thread writes; it may skip
/// numbers, and it is called often (a caller that prints should throttle).
public typealias UpsertProgress = @Sendable (_ tenantsWritten: Int) -> Void

/// What a removal took away.
public struct RemovalReport: Sendable, Equatable {
    public var credentials: Int
    /// Rules naming exactly the removed tenant (never `*` rules): gone with it, so a tenant
    /// re-created under the same id inherits no caller.
    public var accessRules: Int
    /// Client keys for exactly the removed tenant (never `*` keys), gone with it for the same reason.
    public var clientKeys: Int

    public init(credentials: Int, accessRules: Int, clientKeys: Int = 0) {
        self.credentials = credentials
        self.accessRules = accessRules
        self.clientKeys = clientKeys
    }
}
