import Logging
import NIOPosix

/// Obtains a new token for a key. The token manager calls it; it never decides *when*.
public protocol TokenIssuing: Sendable {
    func issueToken(for key: TokenKey) async throws(TokenError) -> LiveToken
}

/// The production issuer: opens the credential from the store, withdraws the stored token that
/// `get_token` is about to revoke, calls `get_token`, and persists the sealed new token before
/// returning it, so a crash costs at most one extra fetch and never leaves a revoked token stored.
public struct SobotTokenIssuer: TokenIssuing {
    let store: TenantStore
    let client: SobotClient
    let clock: any BrokerClock
    let logger: Logger

    public init(store: TenantStore, client: SobotClient, clock: any BrokerClock, logger: Logger) {
        self.store = store
        self.client = client
        self.clock = clock
        self.logger = logger
    }

    public func issueToken(for key: TokenKey) async throws(TokenError) -> LiveToken {
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
        let sentAt = self.clock.monotonicNow()
        let sentAtUnix = self.clock.unixNow()
        let issued: IssuedToken
        do throws(SobotError) {
            issued = try await self.client.fetchToken(
                region: key.region,
                appid: credential.appid,
                appKey: credential.appKey,
                createTime: Int64(sentAtUnix)
            )
        } catch {
            throw .upstream(error)
        }
        let token = LiveToken(
            value: issued.value,
            issuedAt: sentAt,
            expiresAt: sentAt + issued.lifetime,
            expiresAtUnix: Int64(sentAtUnix + issued.lifetime)
        )
        let stored = StoredToken(key: key, value: token.value, issuedAt: Int64(sentAtUnix), expiresAt: token.expiresAtUnix)
        do {
            try await NIOThreadPool.singleton.runIfActive { try store.save(stored) }
        } catch {
            // Serving matters more than persisting: the token stays live; a restart finds none stored
            // (the old one was withdrawn above) and fetches a new one.
            self.logger.error("could not persist token", metadata: ["key": "\(key)", "error": "\(error)"])
        }
        return token
    }
}
