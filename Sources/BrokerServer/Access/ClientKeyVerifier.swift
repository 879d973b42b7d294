import BrokerCore
import Synchronization

/// The daemon's client keys: checks the keys callers of the HTTP proxy present over TCP, and keeps
/// when each was last used.
///
/// The table is loaded from the store and replaced as a whole on every reload (the reloads that
/// bring access rules), so a key created or revoked on any host takes effect without a restart. A
/// presented key's shape is checked before any lookup, and its secret's SHA-256 compared with the
/// stored one in constant time. Uses are noted in memory; `flush(to:)` writes them, at most once per
/// `flushInterval` for each key, so serving a request never writes to the database.
public final class ClientKeyVerifier: Sendable {
    private struct Entry {
        let grant: ClientKeyGrant
        let secretHash: [UInt8]
    }

    /// When one key was used, and what of that has been written.
    private struct Usage {
        /// Wall-clock second of the latest use.
        var lastUsed: Int64
        /// The last use written to the store, and when (monotonic seconds); nil before the first write.
        var written: (lastUsed: Int64, at: Double)?

        /// Notes a use; a wall clock stepped back never moves the last use back.
        mutating func note(_ time: Int64) {
            self.lastUsed = max(self.lastUsed, time)
        }
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var usage: [String: Usage] = [:]
    }

    private let state = Mutex(State())
    private let clock: any BrokerClock
    /// The least time between two writes of one key's last use, in seconds.
    public let flushInterval: Double

    public init(keys: [HashedClientKey], clock: any BrokerClock, flushInterval: Double = 60) {
        self.clock = clock
        self.flushInterval = flushInterval
        self.replace(with: keys)
    }

    /// A verifier holding the store's keys.
    public static func load(from store: any BrokerStore, clock: any BrokerClock) async throws -> ClientKeyVerifier {
        ClientKeyVerifier(keys: try await store.hashedClientKeys(), clock: clock)
    }

    public func reload(from store: any BrokerStore) async throws {
        self.replace(with: try await store.hashedClientKeys())
    }

    /// Installs `keys` as the whole table. Uses noted for keys that remain are kept; those of keys
    /// that are gone are dropped.
    public func replace(with keys: [HashedClientKey]) {
        var entries: [String: Entry] = [:]
        for stored in keys {
            let key = stored.key
            entries[key.id] = Entry(grant: ClientKeyGrant(keyID: key.id, tenant: key.tenant, methods: key.methods), secretHash: stored.secretHash)
        }
        self.state.withLock { state in
            state.entries = entries
            state.usage = state.usage.filter { entries[$0.key] != nil }
        }
    }

    /// How many keys the table holds.
    public var count: Int { self.state.withLock { $0.entries.count } }

    /// The grant of the key `presented` is, or nil when it is malformed or no such key is held (its
    /// id unknown, or its secret wrong): the caller learns nothing about which. A key that verifies
    /// is noted as used now.
    public func verify(presented: some StringProtocol) -> ClientKeyGrant? {
        guard let text = ClientKeyText(parsing: presented) else { return nil }
        let hash = text.secretHash
        let now = Int64(self.clock.unixNow())
        return self.state.withLock { state -> ClientKeyGrant? in
            guard let entry = state.entries[text.id], ConstantTime.equal(hash, entry.secretHash) else { return nil }
            state.usage[text.id, default: Usage(lastUsed: now)].note(now)
            return entry.grant
        }
    }

    /// Writes the last use of every key used since its last write, unless that write was less than
    /// `flushInterval` ago. Returns how many keys were written. On failure nothing is marked written,
    /// so the next flush tries again.
    @discardableResult
    public func flush(to store: any BrokerStore) async throws -> Int {
        let now = self.clock.monotonicNow()
        let due = self.state.withLock { state in
            state.usage.compactMapValues { usage -> Int64? in
                if let written = usage.written, written.lastUsed >= usage.lastUsed || now - written.at < self.flushInterval { return nil }
                return usage.lastUsed
            }
        }
        guard !due.isEmpty else { return 0 }
        try await store.recordClientKeyUses(due)
        self.state.withLock { state in
            for (id, lastUsed) in due { state.usage[id]?.written = (lastUsed, now) }
        }
        return due.count
    }
}
