/// Store-level failures that are not plain SQLite errors.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    case newerSchema(found: Int, supported: Int)
    case unknownTenant(String)
    case unknownRegion(tenant: String, region: String)
    case unreadableSecret(tenant: String, region: String, field: String, reason: SealingError)
    /// `key rotate` re-sealed the store with a newer master-key version than this process loaded.
    case keyRotated(loaded: UInt32, current: Int64)
    /// The cluster seals with a master-key version this host's key file lacks.
    case keyVersionMissing(UInt32)

    public var description: String {
        switch self {
        case .newerSchema(let found, let supported):
            "the database has schema version \(found); this sobot-broker supports up to \(supported): upgrade sobot-broker"
        case .unknownTenant(let id):
            "unknown tenant \"\(id)\""
        case .unknownRegion(let tenant, let region):
            "tenant \"\(tenant)\" has no region \"\(region)\""
        case .unreadableSecret(let tenant, let region, let field, let reason):
            "cannot open the sealed \(field) of \(tenant)/\(region): \(reason)"
        case .keyVersionMissing(let id):
            "the cluster seals secrets with master-key version \(id), which this host's key file lacks: copy the key file from a host that has it"
        case .keyRotated(let loaded, let current):
            "the master key was rotated to version \(current) after this process loaded version \(loaded); nothing was written: run it again"
        }
    }
}
