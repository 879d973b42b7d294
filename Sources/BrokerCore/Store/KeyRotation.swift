/// `key rotate`: a new master-key version, every secret re-sealed with it, old versions dropped.
///
/// Crash safety comes from ordering: (1) the keyring file gains the new version, (2) one transaction
/// re-seals every secret, (3) only then are old versions removed from the file. A crash before (3)
/// leaves every secret openable by a version still in the file; the next rotation cleans up.
public enum KeyRotation {
    public struct Report: Sendable {
        public let activeKeyID: UInt32
        public let resealedSecrets: Int
        public let retiredKeyIDs: [UInt32]
    }

    public static func rotate(home: BrokerHome) throws -> Report {
        let current = try home.loadKeyring()
        let extended = try current.addingFreshKey()
        try MasterKeyFile.write(extended, to: home.paths.masterKey)
        let store = try home.openStore(keyring: extended)
        let resealed = try store.resealAll(with: SecretSealer(keyring: extended))
        let activeID = extended.active.id
        let inUse = try store.keyIDsInUse()
        guard inUse.isSubset(of: [activeID]) else {
            // Unreachable after a committed re-seal; keep every version rather than risk losing a secret.
            return Report(activeKeyID: activeID, resealedSecrets: resealed, retiredKeyIDs: [])
        }
        try MasterKeyFile.write(extended.activeOnly(), to: home.paths.masterKey)
        return Report(activeKeyID: activeID, resealedSecrets: resealed, retiredKeyIDs: current.keys.map(\.id))
    }
}
