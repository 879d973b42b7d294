import BrokerCore
import Logging

/// The cluster's issuer: a key is fetched only by the broker holding its lease in the database, so
/// `get_token` is never called twice at once for a key, whichever broker asks.
///
/// 1. The lease is taken in one short committed statement, timed by the database's clock, and
///    outlives the whole upstream deadline; no transaction or row lock is held across the call.
/// 2. `get_token` is called.
/// 3. The token is written fenced by lease owner and credential revision, with the notification
///    in the same transaction: a slower or resurrected broker never overwrites a newer token.
///
/// A broker that finds another holding the lease waits for that broker's token when a caller is
/// waiting (on demand), and otherwise looks again when the lease ends (background).
public struct LeasedTokenIssuer: TokenIssuing {
    let leases: any TokenLeases
    let client: SobotClient
    let clock: any BrokerClock
    let owner: String
    let leaseSeconds: Double
    let logger: Logger

    /// - Parameters:
    ///   - owner: this broker's id in the cluster.
    ///   - leaseSeconds: how long a lease lasts: longer than the upstream call's whole deadline.
    public init(leases: any TokenLeases, client: SobotClient, clock: any BrokerClock, owner: String, leaseSeconds: Double, logger: Logger) {
        self.leases = leases
        self.client = client
        self.clock = clock
        self.owner = owner
        self.leaseSeconds = leaseSeconds
        self.logger = logger
    }

    public func issueToken(for key: TokenKey, basis: FetchBasis, purpose: FetchPurpose) async throws(TokenError) -> IssueOutcome {
        let started = self.clock.monotonicNow()
        var pause = 0.05
        while true {
            let claim: LeaseClaim
            do {
                claim = try await self.leases.claimLease(for: key, owner: self.owner, basis: basis, seconds: self.leaseSeconds)
            } catch let error as TokenError {
                throw error
            } catch {
                throw Self.uncoordinated(error)
            }
            switch claim {
            case .missing:
                throw .unknownRegion(tenant: key.tenant, region: key.region)
            case .newer(let stored):
                return .token(HeldToken(stored: stored, unixOffset: self.clock.unixOffset()), fetchedHere: false)
            case .held(let remaining):
                if purpose == .background {
                    return .deferred(retryAfter: max(remaining, 0) + Double.random(in: 0.5...2))
                }
                // A waiting caller waits for the holder's token, as long as a lease can last and no
                // longer: a holder that died leaves a lease that expires, and then this broker claims it.
                let now = self.clock.monotonicNow()
                guard now - started < self.leaseSeconds * 2 else {
                    throw .uncoordinated("another broker has held this key's refresh for \(Int(now - started)) s")
                }
                do {
                    try await self.clock.sleep(until: now + min(pause, max(remaining, 0.01)))
                } catch {
                    throw .uncoordinated("cancelled while another broker refreshed the key")
                }
                pause = min(pause * 2, 0.5)
            case .granted(let credential, let databaseNow):
                let leasedAt = self.clock.monotonicNow()
                return try await self.fetch(key, with: credential, leasedAt: (database: databaseNow, monotonic: leasedAt), basis: basis)
            }
        }
    }

    /// - Parameter leasedAt: when the lease was granted, on the database's clock and on this broker's.
    private func fetch(
        _ key: TokenKey,
        with credential: Credential,
        leasedAt: (database: Double, monotonic: Double),
        basis: FetchBasis
    ) async throws(TokenError) -> IssueOutcome {
        let token: LiveToken
        do throws(TokenError) {
            token = try await self.client.issueLiveToken(for: credential, clock: self.clock)
        } catch {
            do {
                try await self.leases.releaseLease(for: key, owner: self.owner)
            } catch {
                // The lease then simply expires.
            }
            throw error
        }
        let generation: Int64?
        do {
            generation = try await self.leases.completeLease(
                for: key,
                owner: self.owner,
                revision: credential.revision,
                token: token.value,
                // When the request was sent, on the database's clock: what every broker schedules from.
                issuedAtDatabase: leasedAt.database + (token.issuedAt - leasedAt.monotonic),
                lifetime: token.lifetime
            )
        } catch {
            // The database went away after get_token: this broker serves the token it holds; the
            // others learn of a new one when theirs is reported stale or this one is stored later.
            self.logger.warning("could not store a fetched token in the cluster database", metadata: ["key": "\(key)"])
            return .token(HeldToken(live: token, revision: credential.revision, generation: basis.generation), fetchedHere: true)
        }
        guard let generation else {
            // Fenced off: nothing was stored. Usually the credential was replaced meanwhile: the
            // engine then sees an old revision, drops the token and fetches for the new credential.
            // Or the lease lapsed (this process stalled past it), and whoever took it stores the token
            // every broker will serve; until then this one is served here.
            self.logger.info("a fetched token was fenced off and not stored", metadata: ["key": "\(key)"])
            return .token(HeldToken(live: token, revision: credential.revision, generation: basis.generation), fetchedHere: true)
        }
        return .token(HeldToken(live: token, revision: credential.revision, generation: generation), fetchedHere: true)
    }

    private static func uncoordinated(_ error: any Error) -> TokenError {
        .uncoordinated("the cluster database is unreachable, so no refresh can be coordinated (\(DatabaseFailure.summary(of: error)))")
    }
}
