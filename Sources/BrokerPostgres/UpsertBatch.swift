import BrokerCore
import NIOCore

/// An upsert's tenants and credentials as column arrays for `unnest`, so any number of them take a
/// few multi-row statements instead of one round trip each.
///
/// Rows are sorted by key, so concurrent upserts lock rows in one order and cannot deadlock. A
/// definition repeated in the batch is folded into one row with the outcome of applying them in
/// order, as SQLite does: the last name given wins, the last credential wins (with one new revision),
/// and a token goes when the appid changes at any step.
struct UpsertBatch: Sendable {
    struct Tenants: Sendable {
        var ids: [String] = []
        /// "" where `hasName` is false: arrays of text cannot hold NULL here.
        var names: [String] = []
        var hasName: [Bool] = []
    }

    struct Credentials: Sendable {
        var tenants: [String] = []
        var regions: [String] = []
        var appids: [String] = []
        var sealedKeys: [ByteBuffer] = []
    }

    var tenants = Tenants()
    var credentials = Credentials()
    /// Keys whose appid changes within the batch itself: their token goes whatever appid is stored.
    var appidChangedWithin: [TokenKey] = []
    /// Tenant definitions in the batch, repeats included: added + updated.
    var tenantWrites = 0
    /// Credential definitions in the batch, repeats included.
    var credentialWrites = 0

    /// Folds and sorts `definitions`, and seals every app key, on all cores.
    static func make(_ definitions: [TenantDefinition], sealer: SecretSealer) async throws -> UpsertBatch {
        var batch = UpsertBatch()
        batch.tenantWrites = definitions.count
        // Sorting by key, then by position, leaves repeats next to each other in the order given.
        let tenantOrder = definitions.indices.sorted { (definitions[$0].id, $0) < (definitions[$1].id, $1) }
        for index in tenantOrder {
            let definition = definitions[index]
            if batch.tenants.ids.last == definition.id {
                if let name = definition.name {
                    batch.tenants.names[batch.tenants.names.count - 1] = name
                    batch.tenants.hasName[batch.tenants.hasName.count - 1] = true
                }
            } else {
                batch.tenants.ids.append(definition.id)
                batch.tenants.names.append(definition.name ?? "")
                batch.tenants.hasName.append(definition.name != nil)
            }
        }

        let credentials = definitions.flatMap { definition in definition.credentials.map { (tenant: definition.id, credential: $0) } }
        batch.credentialWrites = credentials.count
        let credentialOrder = credentials.indices.sorted {
            (credentials[$0].tenant, credentials[$0].credential.region, $0) < (credentials[$1].tenant, credentials[$1].credential.region, $1)
        }
        var appKeys: [String] = []
        for index in credentialOrder {
            let (tenant, credential) = credentials[index]
            let last = batch.credentials.tenants.count - 1
            if last >= 0, batch.credentials.tenants[last] == tenant, batch.credentials.regions[last] == credential.region {
                if batch.credentials.appids[last] != credential.appid, batch.appidChangedWithin.last != TokenKey(tenant: tenant, region: credential.region) {
                    batch.appidChangedWithin.append(TokenKey(tenant: tenant, region: credential.region))
                }
                batch.credentials.appids[last] = credential.appid
                appKeys[last] = credential.appKey
            } else {
                batch.credentials.tenants.append(tenant)
                batch.credentials.regions.append(credential.region)
                batch.credentials.appids.append(credential.appid)
                appKeys.append(credential.appKey)
            }
        }
        batch.credentials.sealedKeys = try await Self.seal(appKeys, tenants: batch.credentials.tenants, regions: batch.credentials.regions, sealer: sealer)
        return batch
    }

    /// Seals `appKeys[i]` for (tenants[i], regions[i]), in as many slices as there are cores.
    private static func seal(_ appKeys: [String], tenants: [String], regions: [String], sealer: SecretSealer) async throws -> [ByteBuffer] {
        let slices = max(1, min(System.coreCount, appKeys.count / 1_000))
        let size = (appKeys.count + slices - 1) / max(slices, 1)
        return try await withThrowingTaskGroup(of: (Int, [ByteBuffer]).self) { group in
            for start in stride(from: 0, to: appKeys.count, by: max(size, 1)) {
                let range = start..<min(start + size, appKeys.count)
                group.addTask {
                    let sealed = try range.map { index in
                        ByteBuffer(bytes: try sealer.seal(appKeys[index], for: SecretBinding(tenant: tenants[index], region: regions[index], field: .appKey)))
                    }
                    return (start, sealed)
                }
            }
            var slices: [(Int, [ByteBuffer])] = []
            for try await slice in group { slices.append(slice) }
            return slices.sorted { $0.0 < $1.0 }.flatMap(\.1)
        }
    }
}
