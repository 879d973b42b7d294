import Logging
import NIOPosix

/// Why a token is wanted: on demand a caller is waiting; in the background nobody is.
public enum FetchPurpose: Sendable {
    case onDemand
    case background
}

/// What the token engine holds for a key when it asks for a new token: the credential revision and
/// token generation a fetch starts from, so that its result can be recognised as current or not.
public struct FetchBasis: Sendable, Equatable {
    public var revision: Int64
    public var generation: Int64

    public init(revision: Int64, generation: Int64) {
        self.revision = revision
        self.generation = generation
    }
}

/// A token as the engine holds it, with the identity it was fetched or read under.
public struct HeldToken: Sendable, Equatable {
    public var live: LiveToken
    /// The credential revision it belongs to.
    public var revision: Int64
    /// Its generation: later tokens for the key have higher ones.
    public var generation: Int64

    public init(live: LiveToken, revision: Int64, generation: Int64) {
        self.live = live
        self.revision = revision
        self.generation = generation
    }

    /// A stored token placed on the monotonic clock (its stamps are Unix seconds): see `BrokerClock.unixOffset()`.
    public init(stored: StoredToken, unixOffset: Double) {
        let live = LiveToken(
            value: stored.value,
            issuedAt: stored.issuedAt - unixOffset,
            expiresAt: stored.expiresAt - unixOffset,
            expiresAtUnix: Int64(stored.expiresAt.rounded(.down))
        )
        self.init(live: live, revision: stored.revision, generation: stored.generation)
    }
}

/// What asking for a new token came to.
public enum IssueOutcome: Sendable, Equatable {
    /// A token: fetched here, or stored by another broker that refreshed the key first.
    case token(HeldToken, fetchedHere: Bool)
    /// Another broker is refreshing the key: look again after `retryAfter` seconds (background only).
    case deferred(retryAfter: Double)
}

/// Obtains a new token for a key, coordinated so that no other fetch for the key runs at once. The
/// token manager calls it; it never decides *when*.
public protocol TokenIssuing: Sendable {
    func issueToken(for key: TokenKey, basis: FetchBasis, purpose: FetchPurpose) async throws(TokenError) -> IssueOutcome
}

/// The single-host issuer (SQLite): the token manager's single flight is the only coordination
/// needed. It opens the credential, withdraws the stored token that `get_token` is about to revoke,
/// calls `get_token`, and persists the sealed new token, fenced by the credential's revision, before
/// returning it: a crash costs at most one extra fetch and never leaves a revoked token stored.
public struct SobotTokenIssuer: TokenIssuing {
    let store: SQLiteStore
    let client: SobotClient
    let clock: any BrokerClock
    let logger: Logger

    public init(store: SQLiteStore, client: SobotClient, clock: any BrokerClock, logger: Logger) {
        self.store = store
        self.client = client
        self.clock = clock
        self.logger = logger
    }

    public func issueToken(for key: TokenKey, basis: FetchBasis, purpose: FetchPurpose) async throws(TokenError) -> IssueOutcome {
        let store = self.store
        let credential: Credential
        do {
            // When the withdrawal cannot be written this throws, and get_token is not called: the
            // token already held stays valid upstream and keeps being served.
            guard let found = try await NIOThreadPool.singleton.runIfActive({ try store.credentialForFetch(key) }) else {
                throw TokenError.unknownRegion(tenant: key.tenant, region: key.region)
            }
            credential = found
        } catch let error as TokenError {
            throw error
        } catch {
            throw .storage(String(describing: error))
        }
        let token = try await self.client.issueLiveToken(for: credential, clock: self.clock)
        let stored = StoredToken(key: key, value: token.value, issuedAt: Double(token.expiresAtUnix) - token.lifetime, expiresAt: Double(token.expiresAtUnix))
        var generation = basis.generation
        do {
            let saved = try await NIOThreadPool.singleton.runIfActive { try store.save(stored, fetchedUnder: credential.revision) }
            if let saved { generation = saved }
        } catch {
            // Serving matters more than persisting: the token stays live; a restart finds none stored
            // (the old one was withdrawn above) and fetches a new one.
            self.logger.error("could not persist token", metadata: ["key": "\(key)", "error": "\(error)"])
        }
        return .token(HeldToken(live: token, revision: credential.revision, generation: generation), fetchedHere: true)
    }
}

extension SobotClient {
    /// Calls `get_token` with `credential` and stamps the result on `clock`: issued when the request
    /// was sent, a conservative stamp.
    public func issueLiveToken(for credential: Credential, clock: any BrokerClock) async throws(TokenError) -> LiveToken {
        let sentAt = clock.monotonicNow()
        let sentAtUnix = clock.unixNow()
        let issued: IssuedToken
        do throws(SobotError) {
            issued = try await self.fetchToken(
                region: credential.key.region,
                appid: credential.appid,
                appKey: credential.appKey,
                createTime: Int64(sentAtUnix)
            )
        } catch {
            throw .upstream(error)
        }
        return LiveToken(
            value: issued.value,
            issuedAt: sentAt,
            expiresAt: sentAt + issued.lifetime,
            expiresAtUnix: Int64(sentAtUnix + issued.lifetime)
        )
    }
}
