/// `key rotate`: a new master-key version, every secret re-sealed with it, old versions dropped.
///
/// Crash safety comes from ordering: (1) the keyring file gains the new version, (2) one transaction
/// re-seals every secret, (3) only then are old versions removed from the file. A crash before (3)
/// leaves every secret openable by a version still in the file; the next rotation cleans up.
///
/// Concurrent writers (a `tenant add` that loaded the old keyring) are kept out by the database
/// write lock: (1) and (2) run under one lock, so the file is read with every committed secret
/// sealed by a version in it; (2) records the new version, which writers check inside their own
/// transaction; and (3) verifies the versions in use and rewrites the file under the lock again.
public enum KeyRotation {
    public struct Report: Sendable {
        public let activeKeyID: UInt32
        public let resealedSecrets: Int
        public let retiredKeyIDs: [UInt32]
    }

    ///
    /// The version re-sealed with is the key file's newest when no secret uses it yet and it is newer
    /// than every version in use (one `key add` put there, to distribute before a cluster rotates to
    /// it); otherwise a new one is added.
    public static func rotate(home: BrokerHome, store: any BrokerStore) async throws -> Report {
        let inUse = try await store.keyIDsInUse()
        let (keyring, resealed) = try await store.resealAll {
            let current = try home.loadKeyring()
            if current.active.id > (inUse.max() ?? 0), current.keys.count > 1 {
                return current
            }
            let extended = try current.addingFreshKey()
            try MasterKeyFile.write(extended, to: home.paths.masterKey)
            return extended
        }
        let activeID = keyring.active.id
        let retired = try await store.withKeyIDsInUse { inUse -> [UInt32] in
            // Only a writer that ignores the recorded version (an older sobot-broker) can have sealed
            // with another one since; keep every version rather than risk losing its secret.
            guard inUse.isSubset(of: [activeID]) else { return [] }
            let retiring = try home.loadKeyring().keys.map(\.id).filter { $0 != activeID }
            try MasterKeyFile.write(keyring.activeOnly(), to: home.paths.masterKey)
            return retiring
        }
        return Report(activeKeyID: activeID, resealedSecrets: resealed, retiredKeyIDs: retired)
    }
}
