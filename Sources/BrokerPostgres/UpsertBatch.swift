import BrokerCore
import NIOCore

/// An upsert's tenants and credentials as column arrays for `unnest`, so any number of them take a
/// few multi-row statements instead of one round trip each.
///
/// A definition repeated in the batch is folded into one row with the outcome of applying them in
/// order, as SQLite does: the last name given wins, the last credential wins, its revision grows once
/// per write, and a token goes when the appid changes at any step. Rows are sorted by key, so
/// concurrent upserts lock rows in one order and cannot deadlock.
struct UpsertBatch {
    struct Tenants {
        var ids: [String] = []
        /// "" where `hasName` is false: arrays of text cannot hold NULL here.
        var names: [String] = []
        var hasName: [Bool] = []
    }

    struct Credentials {
        var tenants: [String] = []
        var regions: [String] = []
        var appids: [String] = []
        var sealedKeys: [ByteBuffer] = []
        /// How many times the batch writes the credential: its revision grows by as much.
        var writes: [Int64] = []
    }

    var tenants = Tenants()
    var credentials = Credentials()
    /// Keys whose appid changes within the batch itself: their token goes whatever appid is stored.
    var appidChangedWithin: [TokenKey] = []
    /// Tenant definitions in the batch, repeats included: added + updated.
    var tenantWrites = 0
    /// Credential definitions in the batch, repeats included.
    var credentialWrites = 0

    init(_ definitions: [TenantDefinition], sealer: SecretSealer) throws(SealingError) {
        var names: [String: String?] = [:]
        var latest: [TokenKey: (appid: String, appKey: String, writes: Int64, changed: Bool)] = [:]
        for tenant in definitions {
            self.tenantWrites += 1
            if let name = tenant.name {
                names[tenant.id] = .some(name)
            } else if names[tenant.id] == nil {
                names[tenant.id] = .some(nil)
            }
            for credential in tenant.credentials {
                self.credentialWrites += 1
                let key = TokenKey(tenant: tenant.id, region: credential.region)
                if let previous = latest[key] {
                    latest[key] = (credential.appid, credential.appKey, previous.writes + 1, previous.changed || previous.appid != credential.appid)
                } else {
                    latest[key] = (credential.appid, credential.appKey, 1, false)
                }
            }
        }
        for (id, name) in names.sorted(by: { $0.key < $1.key }) {
            self.tenants.ids.append(id)
            self.tenants.names.append(name ?? "")
            self.tenants.hasName.append(name != nil)
        }
        for (key, credential) in latest.sorted(by: { $0.key < $1.key }) {
            let sealed = try sealer.seal(credential.appKey, for: SecretBinding(tenant: key.tenant, region: key.region, field: .appKey))
            self.credentials.tenants.append(key.tenant)
            self.credentials.regions.append(key.region)
            self.credentials.appids.append(credential.appid)
            self.credentials.sealedKeys.append(ByteBuffer(bytes: sealed))
            self.credentials.writes.append(credential.writes)
            if credential.changed { self.appidChangedWithin.append(key) }
        }
    }
}
