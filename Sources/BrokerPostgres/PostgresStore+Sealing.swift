import BrokerCore
import PostgresNIO

/// Which master-key version seals new secrets.
///
/// Every broker of a cluster seals with the version `key rotate` recorded in `sealing_key` (before any
/// rotation: the oldest of its key file), not with the newest version its key file holds. So a key
/// file that gains a version ahead of a rotation, on some hosts first, changes nothing: no broker
/// seals with a version another may lack until the rotation, which waits for every live broker to
/// hold it, records it.
extension PostgresStore {
    /// The keyring this store last loaded or rotated to, for opening secrets.
    var sealer: SecretSealer { self.sealerState.withLock { $0 } }

    func adopt(_ keyring: MasterKeyring) {
        self.sealerState.withLock { $0 = SecretSealer(keyring: keyring) }
    }

    /// The sealer for secrets written now, from the recorded version read without a lock. A writer
    /// seals with it before its transaction opens, and checks it again inside (`requireSealingKey`).
    func writingSealer() async throws -> SecretSealer {
        let recorded = try await self.pool.withSession("read the sealing key version") { session in
            try await session.query("SELECT key_id FROM sealing_key").first?.decode(Int64.self)
        }
        return try Self.sealer(for: recorded, from: self.sealer)
    }

    /// Throws unless `sealer` still seals with the recorded version. Call it first in a transaction that
    /// writes a secret: its lock (FOR SHARE) keeps a rotation out until the transaction ends, and taking
    /// it before any credentials row keeps `resealAll`'s lock order, so the two cannot deadlock.
    static func requireSealingKey(_ sealer: SecretSealer, session: Session, loaded: SecretSealer) async throws {
        let recorded = try await session.query("SELECT key_id FROM sealing_key FOR SHARE").first?.decode(Int64.self)
        let current = try Self.sealer(for: recorded, from: loaded).keyring.active.id
        guard current == sealer.keyring.active.id else {
            throw StoreError.keyRotated(loaded: sealer.keyring.active.id, current: Int64(current))
        }
    }

    /// `loaded` narrowed to the versions up to the recorded one (the oldest when none is recorded), so
    /// that its active key is the one to seal with.
    private static func sealer(for recorded: Int64?, from loaded: SecretSealer) throws -> SecretSealer {
        let keys = loaded.keyring.keys
        guard let recorded else { return SecretSealer(keyring: MasterKeyring(keys: [keys[0]])) }
        let newest = loaded.keyring.active.id
        guard recorded <= Int64(newest) else { throw StoreError.keyRotated(loaded: newest, current: recorded) }
        guard keys.contains(where: { Int64($0.id) == recorded }) else { throw PostgresStoreError.sealingKeyMissing(keyID: UInt32(recorded)) }
        return SecretSealer(keyring: MasterKeyring(keys: keys.filter { Int64($0.id) <= recorded }))
    }
}
