import BrokerCore

/// What trying to take a key's refresh lease came to. Leases live in the database and are timed by
/// its clock, so no broker's clock can make two of them overlap.
public enum LeaseClaim: Sendable {
    /// The lease is this broker's until the database's clock passes its end: fetch with this
    /// credential. `databaseNow` is the database's Unix time when the lease was taken.
    case granted(Credential, databaseNow: Double)
    /// Another broker stored a newer token than the one the claim started from: serve it, fetch nothing.
    case newer(StoredToken)
    /// Another broker holds the lease for `remaining` more seconds.
    case held(remaining: Double)
    /// The key has no credential (removed meanwhile).
    case missing
}

/// One broker of a cluster, as its heartbeat row describes it.
public struct ClusterMember: Sendable, Equatable {
    public var id: String
    public var host: String
    public var pid: Int32
    public var version: String
    /// The master-key versions the broker's key file holds: a rotation waits until every live
    /// broker holds the version it will seal with.
    public var keyIDs: [UInt32]
    /// Seconds since the broker last wrote its heartbeat, on the database's clock.
    public var secondsSinceSeen: Double

    public init(id: String, host: String, pid: Int32, version: String, keyIDs: [UInt32], secondsSinceSeen: Double) {
        self.id = id
        self.host = host
        self.pid = pid
        self.version = version
        self.keyIDs = keyIDs
        self.secondsSinceSeen = secondsSinceSeen
    }
}

/// A key's token as the database last recorded it, without its secret: what a watcher compares
/// with the generation it holds before reading the sealed token.
public struct TokenVersion: Sendable, Equatable {
    public var key: TokenKey
    public var revision: Int64
    public var generation: Int64

    public init(key: TokenKey, revision: Int64, generation: Int64) {
        self.key = key
        self.revision = revision
        self.generation = generation
    }
}

/// What changed since a broker last looked.
public struct ChangeBatch: Sendable {
    /// Pass this to the next `changes(since:)`: every transaction older than it was visible to this read.
    public var horizon: UInt64
    /// Keys whose token rows were written since the previous horizon (possibly again: reads overlap).
    public var tokens: [TokenVersion]
    /// Tenants, credentials, access rules or client keys changed since the previous horizon.
    public var configurationChanged: Bool

    public init(horizon: UInt64, tokens: [TokenVersion], configurationChanged: Bool) {
        self.horizon = horizon
        self.tokens = tokens
        self.configurationChanged = configurationChanged
    }
}

/// The channel brokers `LISTEN` on, and what its payloads say. A payload never holds a secret.
public enum ClusterChannel {
    public static let name = "sobot_broker"

    /// A token was stored: `token <generation> <tenant> <region>`.
    public static func tokenPayload(_ version: TokenVersion) -> String {
        "token \(version.generation) \(version.key.tenant) \(version.key.region)"
    }

    /// Tenants, credentials, access rules or client keys changed.
    public static let configurationPayload = "config"

    public enum Message: Sendable, Equatable {
        case token(key: TokenKey, generation: Int64)
        case configuration
    }

    /// The message in `payload`, or nil for one this version does not know.
    public static func parse(_ payload: String) -> Message? {
        if payload == Self.configurationPayload { return .configuration }
        let parts = payload.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "token", let generation = Int64(parts[1]), Identifier.isValidTenantID(String(parts[2])),
            !parts[3].isEmpty, parts[3].count <= 32
        else { return nil }
        return .token(key: TokenKey(tenant: String(parts[2]), region: String(parts[3])), generation: generation)
    }
}

/// The refresh leases of a cluster's keys: what `LeasedTokenIssuer` needs from the database.
public protocol TokenLeases: Sendable {
    /// Takes the key's lease for `seconds` (by the database's clock) unless another broker holds it
    /// or has already stored a newer token than `basis.generation`; withdraws the stored token when
    /// granted, since `get_token` is about to revoke it.
    func claimLease(for key: TokenKey, owner: String, basis: FetchBasis, seconds: Double) async throws -> LeaseClaim

    /// Stores the token fetched under the lease, fenced by the lease's owner and the credential's
    /// revision, and notifies every broker in the same transaction. Returns the new generation, or
    /// nil when the lease or the credential changed meanwhile (nothing is written then).
    func completeLease(
        for key: TokenKey,
        owner: String,
        revision: Int64,
        token: String,
        issuedAtDatabase: Double,
        lifetime: Double
    ) async throws -> Int64?

    /// Gives the lease up after a failed fetch, so another broker need not wait for it to expire.
    func releaseLease(for key: TokenKey, owner: String) async throws
}

/// What a broker of a cluster reads to follow the others: changed rows, single tokens, and the
/// notification channel.
public protocol ClusterFeed: Sendable {
    func changes(since horizon: UInt64?) async throws -> ChangeBatch

    /// The stored, servable tokens of `keys` that expire after `now`, read together.
    func tokens(for keys: [TokenKey], expiringAfter now: Int64) async throws -> [StoredToken]

    /// Listens on `ClusterChannel.name` over a connection of its own: calls `listening` once the
    /// `LISTEN` is in effect, then `received` with each payload, until the connection fails (it
    /// throws) or the task is cancelled.
    func listen(listening: @escaping @Sendable () async -> Void, received: @escaping @Sendable (String) async -> Void) async throws
}

/// The heartbeat rows through which brokers of a cluster see each other.
public protocol ClusterMembership: Sendable {
    func heartbeat(id: String, host: String, pid: Int32, version: String, keyIDs: [UInt32]) async throws
    func members(seenWithin seconds: Double) async throws -> [ClusterMember]
    func leaveCluster(id: String) async throws
}
