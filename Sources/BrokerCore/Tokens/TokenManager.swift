import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Holds exactly one live token per (tenant, region) and keeps it fresh.
///
/// The engine has three parts, and this actor joins them:
/// - serving: `cache` holds each key's token, with the identity it was fetched under, and nothing
///   else does; readers on the hot path use it and never wait on this actor while a token is fresh;
/// - scheduling: `RefreshScheduler` decides when a key is refreshed in the background, at a per-key
///   point in the refresh window (see `RefreshSchedule`), paced per region;
/// - coordination: concurrent demands for one key share one in-flight fetch here (single flight),
///   and the `TokenIssuing` issuer coordinates beyond this process (the cluster's database lease).
///
/// Failures back off with full jitter; rejections are held; an unexpired token keeps being served.
///
/// As a `Service`, `run()` is the background refresher.
public actor TokenManager: Service {
    public nonisolated let cache: TokenCache
    public nonisolated let clock: any BrokerClock
    private let issuer: any TokenIssuing
    private let store: any BrokerStore
    private let policy: TokenPolicy
    private let logger: Logger

    private typealias Fetch = Task<Result<IssueOutcome, TokenError>, Never>

    /// What this actor knows of a key besides its token (which only `cache` holds): the credential
    /// revision, the fetch in flight and the failures. A class, not a struct: `slots` has 2^18
    /// buckets at 100,000 keys, and a bucket holding a reference instead of this whole record saves
    /// megabytes there. Only this actor touches it.
    private final class Slot {
        /// The key's place in `cache` and in `scheduler`.
        let place: TokenSlot
        /// The credential's revision in the store when this slot last (re)loaded it.
        var revision: Int64
        var fetch: Fetch?
        var failures = 0
        var blockedUntil: Double?
        var lastError: TokenError?
        /// Unix seconds, for reports only.
        var lastRefreshAt: Double?

        init(place: TokenSlot, revision: Int64) {
            self.place = place
            self.revision = revision
        }
    }

    private var slots: [TokenKey: Slot] = [:]
    private var outages = RegionOutageLog()
    private var scheduler: RefreshScheduler
    private var sleeper: Task<Void, Never>?
    private var sleepingUntil = Double.infinity
    /// The last reload started: each waits for the one before, so two never interleave their reads.
    private var reloading: Task<Void, any Error>?

    /// - Parameter encoder: see `TokenCache.init(encoder:)`.
    public init(
        store: any BrokerStore,
        issuer: any TokenIssuing,
        clock: any BrokerClock,
        policy: TokenPolicy,
        logger: Logger,
        encoder: TokenCache.Encoder? = nil
    ) {
        self.cache = TokenCache(encoder: encoder)
        self.scheduler = RefreshScheduler(policy: policy)
        self.store = store
        self.issuer = issuer
        self.clock = clock
        self.policy = policy
        self.logger = logger
    }

    // MARK: Start-up and reload

    /// Loads every credential key and every unexpired persisted token; schedules refreshes, and
    /// acquisition of missing tokens. Persisted tokens are served as they are: no upstream call.
    public func start() async throws {
        try await self.reload()
    }

    /// Brings the tracked keys in line with the store: new credentials are tracked and acquired,
    /// removed ones stop being served at once, and a replaced credential forgets its failures (and its
    /// token, if the store no longer holds it: the appid changed, or the token was withdrawn for a
    /// fetch whose result could not be stored).
    ///
    /// Reloads run one at a time. A token fetched or adopted while a reload reads is kept: the reload
    /// replaces a held token only with a newer generation, and drops one only when it belongs to a
    /// credential revision older than the store's.
    public func reload() async throws {
        let previous = self.reloading
        let reload = Task {
            _ = try? await previous?.value
            try await self.reloadFromStore()
        }
        self.reloading = reload
        defer {
            if self.reloading == reload { self.reloading = nil }
        }
        try await reload.value
    }

    private func reloadFromStore() async throws {
        let store = self.store
        let revisions = try await store.credentialRevisions()
        let now = self.clock.monotonicNow()
        let unixOffset = self.clock.unixOffset()
        let unixNow = Int64(now + unixOffset)
        for key in self.slots.keys where revisions[key] == nil {
            self.forget(key)
        }
        let changed = revisions.filter { key, revision in self.slots[key].map { $0.revision != revision } ?? false }
        let added = revisions.filter { key, _ in self.slots[key] == nil }
        for (key, revision) in added {
            self.slots[key] = Slot(place: self.cache.track(key), revision: revision)
        }
        let reread = Array(changed.keys) + Array(added.keys)
        let stored: [StoredToken]
        // Many keys to re-read (a start, a large import): one read of every token beats one per key.
        if reread.count > 256 {
            let wanted = Set(reread)
            let loaded = try await store.loadTokens(expiringAfter: unixNow)
            stored = loaded.tokens.filter { wanted.contains($0.key) }
            if !loaded.unreadable.isEmpty {
                self.logger.warning("stored tokens could not be opened; fetching new ones", metadata: ["count": "\(loaded.unreadable.count)"])
            }
        } else {
            var found: [StoredToken] = []
            for key in reread {
                if let token = try await store.token(for: key, expiringAfter: unixNow) { found.append(token) }
            }
            stored = found
        }
        let storedByKey = Dictionary(stored.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        var retryNow: [TokenKey] = []
        for (key, revision) in changed {
            guard let slot = self.slots[key] else { continue }
            if slot.failures > 0 { retryNow.append(key) }
            slot.revision = revision
            slot.failures = 0
            slot.blockedUntil = nil
            slot.lastError = nil
            // A token the store no longer holds for the new revision belonged to the old credential
            // (its appid changed, or it was removed and added again); one fetched under the new
            // revision meanwhile is kept. A re-added credential counts its generations afresh.
            if let held = self.cache.held(at: slot.place), held.revision != revision, storedByKey[key]?.value != held.live.value {
                self.cache.clearToken(at: slot.place)
            }
        }
        for key in reread {
            guard let slot = self.slots[key] else { continue }
            let held = self.cache.held(at: slot.place)
            if let stored = storedByKey[key], held.map({ stored.generation > $0.generation }) ?? true {
                self.adopt(HeldToken(stored: stored, unixOffset: unixOffset), for: key, now: now)
            } else if held == nil, slot.fetch == nil {
                self.schedule(key, at: now)
            }
        }
        for key in retryNow {
            guard let slot = self.slots[key], self.cache.held(at: slot.place) != nil else { continue }
            self.schedule(key, at: now)
        }
        self.logger.info(
            "token engine loaded",
            metadata: ["credentials": "\(revisions.count)", "added": "\(added.count)", "changed": "\(changed.count)", "tokens_reused": "\(stored.count)"]
        )
    }

    /// Makes `token` the key's live token and schedules its refresh.
    private func adopt(_ token: HeldToken, for key: TokenKey, now: Double) {
        guard let slot = self.slots[key] else { return }
        if slot.revision == 0 { slot.revision = token.revision }
        self.cache.store(token, at: slot.place)
        let due = RefreshSchedule.refreshTime(for: token.live, key: key, policy: self.policy)
        self.schedule(key, at: max(due, now))
    }

    /// Takes a token another broker stored (told by a notification or a poll): adopted when it is
    /// newer than the one held and belongs to the credential revision held; otherwise ignored.
    public func adoptStored(_ stored: StoredToken) {
        guard let slot = self.slots[stored.key], stored.generation > self.generation(of: slot), stored.revision >= slot.revision else { return }
        let now = self.clock.monotonicNow()
        let held = HeldToken(stored: stored, unixOffset: self.clock.unixOffset())
        guard held.live.isUnexpired(at: now) else { return }
        slot.failures = 0
        slot.blockedUntil = nil
        slot.lastError = nil
        self.adopt(held, for: stored.key, now: now)
    }

    /// Takes a batch of tokens other brokers stored, as `adoptStored(_:)` does each: one actor hop.
    public func adoptStored(_ tokens: [StoredToken]) {
        for token in tokens { self.adoptStored(token) }
    }

    /// Which of `versions` (key and generation) are newer than the token held for a tracked key:
    /// what a watcher reads from the database. Untracked keys are left to the reload that tracks them.
    public func newer(_ versions: [TokenKey: Int64]) -> [TokenKey] {
        versions.compactMap { key, generation in
            guard let slot = self.slots[key], generation > self.generation(of: slot) else { return nil }
            return key
        }
    }

    /// The generation of the token held for the slot's key; 0 with none.
    private func generation(of slot: Slot) -> Int64 {
        self.cache.held(at: slot.place)?.generation ?? 0
    }

    private func forget(_ key: TokenKey) {
        guard let slot = self.slots.removeValue(forKey: key) else { return }
        self.log(self.outages.cleared(key, now: self.clock.monotonicNow()))
        slot.fetch?.cancel()
        self.scheduler.cancel(slot.place)
        self.cache.forget(key)
    }

    // MARK: Serving

    /// Resolves a request's tenant and optional region to a tracked key. A tenant or region not yet
    /// tracked is looked up in the store, so credentials added while running are found. Only keys
    /// the store returns are ever tracked: a name that is not a tenant id never becomes one.
    public func resolve(tenant: String, region: String?) async throws(TokenError) -> TokenKey {
        if let key = TokenKey.pick(tenant: tenant, region: region, from: self.cache.regions(of: tenant)) {
            return key
        }
        guard Identifier.isValidTenantID(tenant) else { throw .unknownTenant(tenant) }
        let store = self.store
        let storedKeys: [TokenKey]
        do {
            storedKeys = try await store.credentialKeys(ofTenant: tenant)
        } catch {
            throw .storage(String(describing: error))
        }
        let held = storedKeys.filter { $0.tenant == tenant }
        for key in held where self.slots[key] == nil {
            // Revision 0 marks "found on demand": the next reload records the real one.
            self.slots[key] = Slot(place: self.cache.track(key), revision: 0)
        }
        let storedRegions = held.map(\.region)
        if let key = TokenKey.pick(tenant: tenant, region: region, from: storedRegions) { return key }
        if storedRegions.isEmpty { throw .unknownTenant(tenant) }
        if let region { throw .unknownRegion(tenant: tenant, region: region) }
        throw .regionRequired(tenant: tenant, regions: storedRegions.sorted())
    }

    /// The live token for `key`: the cached one while fresh, otherwise one fetch shared by every
    /// concurrent caller. While the upstream fails, an unexpired token is still served.
    public func token(for key: TokenKey) async throws(TokenError) -> LiveToken {
        guard let slot = self.slots[key] else { throw .unknownRegion(tenant: key.tenant, region: key.region) }
        let now = self.clock.monotonicNow()
        let held = self.cache.held(at: slot.place)?.live
        if let token = held, token.isFresh(at: now) { return token }
        if let fetch = slot.fetch { return try await self.finish(fetch, for: key, fallBack: true) }
        if let blocked = slot.blockedUntil, blocked > now {
            if let token = held, token.isUnexpired(at: now) { return token }
            throw slot.lastError ?? .upstream(.unavailable("backing off after upstream failures"))
        }
        return try await self.finish(self.startFetch(key, purpose: .onDemand), for: key, fallBack: true)
    }

    /// Compare-and-refresh: fetches a new token only if `reported` is still the current one, once
    /// however many callers report it; otherwise returns the current token.
    public func invalidate(_ key: TokenKey, reported: String) async throws(TokenError) -> LiveToken {
        guard let slot = self.slots[key] else { throw .unknownRegion(tenant: key.tenant, region: key.region) }
        if let fetch = slot.fetch { return try await self.finish(fetch, for: key, fallBack: false) }
        guard let current = self.cache.held(at: slot.place), current.live.value == reported else { return try await self.token(for: key) }
        if let blocked = slot.blockedUntil, blocked > self.clock.monotonicNow() {
            throw slot.lastError ?? .upstream(.unavailable("backing off after upstream failures"))
        }
        self.logger.info("token reported stale; refreshing", metadata: ["key": "\(key)"])
        return try await self.finish(self.startFetch(key, purpose: .onDemand), for: key, fallBack: false)
    }

    /// An operator's `refresh`: forgets the backoff and fetches now, whatever the held token's
    /// state. Coordinated like any fetch: a fetch already in flight is joined, and in a cluster the
    /// lease decides which broker calls upstream (the others adopt its token).
    public func refreshNow(_ key: TokenKey) async throws(TokenError) -> LiveToken {
        guard let slot = self.slots[key] else { throw .unknownRegion(tenant: key.tenant, region: key.region) }
        slot.blockedUntil = nil
        slot.failures = 0
        if let fetch = slot.fetch { return try await self.finish(fetch, for: key, fallBack: false) }
        self.logger.info("refresh requested; fetching now", metadata: ["key": "\(key)"])
        return try await self.finish(self.startFetch(key, purpose: .onDemand), for: key, fallBack: false)
    }

    /// Keys whose last fetch failed, sorted: what `refresh --failing` retries.
    public func failingKeys() -> [TokenKey] {
        self.slots.compactMap { key, slot in slot.lastError == nil ? nil : key }.sorted()
    }

    private func finish(_ fetch: Fetch, for key: TokenKey, fallBack: Bool) async throws(TokenError) -> LiveToken {
        switch await fetch.value {
        case .success(.token(let token, _)):
            guard let slot = self.slots[key] else { throw .unknownRegion(tenant: key.tenant, region: key.region) }
            // Fetched for a credential replaced meanwhile: never served; the caller gets the new one's.
            if token.revision < slot.revision { return try await self.token(for: key) }
            // The slot may hold a newer one by now (adopted from another broker meanwhile).
            if let held = self.cache.held(at: slot.place), held.generation > token.generation { return held.live }
            return token.live
        case .success(.deferred):
            // A background fetch this caller joined found another broker refreshing: wait for that.
            if let token = self.heldToken(for: key), token.isFresh(at: self.clock.monotonicNow()) { return token }
            return try await self.finish(self.startFetch(key, purpose: .onDemand), for: key, fallBack: fallBack)
        case .failure(let error):
            if fallBack, let token = self.heldToken(for: key), token.isUnexpired(at: self.clock.monotonicNow()) { return token }
            throw error
        }
    }

    private func heldToken(for key: TokenKey) -> LiveToken? {
        self.slots[key].flatMap { self.cache.held(at: $0.place)?.live }
    }

    // MARK: Fetching

    private func startFetch(_ key: TokenKey, purpose: FetchPurpose) -> Fetch {
        if let existing = self.slots[key]?.fetch { return existing }
        guard let slot = self.slots[key] else { return Fetch { .failure(.unknownRegion(tenant: key.tenant, region: key.region)) } }
        let issuer = self.issuer
        let basis = FetchBasis(revision: slot.revision, generation: self.generation(of: slot))
        let fetch = Fetch {
            let result: Result<IssueOutcome, TokenError>
            do throws(TokenError) {
                result = .success(try await issuer.issueToken(for: key, basis: basis, purpose: purpose))
            } catch {
                result = .failure(error)
            }
            self.complete(key, with: result, purpose: purpose, basis: basis)
            return result
        }
        slot.fetch = fetch
        return fetch
    }

    private func complete(_ key: TokenKey, with result: Result<IssueOutcome, TokenError>, purpose: FetchPurpose, basis: FetchBasis) {
        let paced = purpose == .background
        if paced {
            self.scheduler.finished(region: key.region)
            self.wake(before: 0)
        }
        BrokerMetrics.recordTokenFetch(region: key.region, outcome: Self.outcomeLabel(result), background: paced)
        guard let slot = self.slots[key] else { return }
        slot.fetch = nil
        let now = self.clock.monotonicNow()
        switch result {
        case .success(.token(let token, _)) where token.revision < slot.revision:
            // Fetched for a credential replaced meanwhile: never served; fetch for the new one.
            self.logger.info("dropped a token fetched for a replaced credential", metadata: ["key": "\(key)"])
            self.schedule(key, at: now)
        case .success(.token(let token, let fetchedHere)):
            slot.failures = 0
            slot.blockedUntil = nil
            slot.lastError = nil
            self.log(self.outages.cleared(key, now: now))
            if fetchedHere { slot.lastRefreshAt = self.clock.unixNow() }
            if token.generation >= self.generation(of: slot) {
                self.adopt(token, for: key, now: now)
            }
        case .success(.deferred(let retryAfter)):
            // Another broker was refreshing. If its token was adopted while this answer came back, the
            // key is planned from that token already: looking again at `retryAfter` would claim a
            // lease against the adopted generation and fetch a second, early token.
            if let held = self.cache.held(at: slot.place), held.generation > basis.generation {
                self.schedule(key, at: max(now, RefreshSchedule.refreshTime(for: held.live, key: key, policy: self.policy)))
            } else {
                self.schedule(key, at: now + retryAfter)
            }
        case .failure(.unknownRegion), .failure(.unknownTenant):
            self.logger.info("credential removed; no longer tracked", metadata: ["key": "\(key)"])
            self.forget(key)
        case .failure(let error):
            slot.failures += 1
            slot.lastError = error
            let delay: Double
            switch error {
            case .upstream(let upstream) where !upstream.isRecoverable:
                delay = self.policy.rejectionHold
            case .uncoordinated:
                // The database is away: no backoff to grow, look again soon. Whoever watches the
                // database logs the outage once; a line per key would bury it.
                delay = Double.random(in: self.policy.coordinationRetry)
                slot.blockedUntil = now + delay
                self.schedule(key, at: now + delay)
                return
            default:
                delay = RefreshSchedule.backoff(afterFailures: slot.failures, policy: self.policy)
            }
            slot.blockedUntil = now + delay
            self.schedule(key, at: now + delay)
            self.logger.debug(
                "token fetch failed",
                metadata: [
                    "key": "\(key)", "error": "\(error)", "failures": "\(slot.failures)",
                    "retry_in_s": "\(Int(delay.rounded(.up)))",
                ]
            )
            self.log(self.outages.failed(key, error: "\(error)", now: now))
        }
    }

    /// Writes what `RegionOutageLog` decided: a few lines per region and outage, not one per key.
    private func log(_ line: RegionOutageLog.Line?) {
        switch line {
        case nil:
            return
        case .started(let region, let key, let error)?:
            self.logger.warning("token fetches failing in a region", metadata: ["region": "\(region)", "first_key": "\(key)", "error": "\(error)"])
        case .continuing(let region, let failingKeys, let failures, let seconds, let lastError)?:
            self.logger.warning(
                "token fetches still failing in a region",
                metadata: [
                    "region": "\(region)", "failing_keys": "\(failingKeys)", "failures": "\(failures)",
                    "for_s": "\(Int(seconds.rounded()))", "last_error": "\(lastError)",
                ]
            )
        case .recovered(let region, let seconds, let failures)?:
            self.logger.notice(
                "token fetches recovered in a region",
                metadata: ["region": "\(region)", "after_s": "\(Int(seconds.rounded()))", "failures": "\(failures)"]
            )
        }
    }

    private static func outcomeLabel(_ result: Result<IssueOutcome, TokenError>) -> String {
        switch result {
        case .success(.token(_, fetchedHere: true)): "ok"
        case .success(.token(_, fetchedHere: false)): "adopted"
        case .success(.deferred): "deferred"
        case .failure(.upstream(.rejected)): "rejected"
        case .failure(.upstream(.unavailable)): "unavailable"
        case .failure(.storage): "storage"
        case .failure(.uncoordinated): "uncoordinated"
        case .failure: "removed"
        }
    }

    // MARK: Background refresher

    /// Refreshes in the background until graceful shutdown or cancellation, then cancels and awaits
    /// every fetch still in flight, so nothing touches the store or the HTTP client afterwards.
    public func run() async throws {
        _ = try? await cancelWhenGracefulShutdown {
            await self.refreshLoop()
        }
        await self.stopFetches()
    }

    private func stopFetches() async {
        let fetches = self.slots.values.compactMap(\.fetch)
        for fetch in fetches { fetch.cancel() }
        for fetch in fetches { _ = await fetch.value }
    }

    private func refreshLoop() async {
        while !Task.isCancelled {
            let now = self.clock.monotonicNow()
            let starts = self.scheduler.starts(at: now) { place in
                self.cache.key(of: place).flatMap { self.slots[$0] }.map { $0.fetch == nil } ?? false
            }
            for place in starts {
                if let key = self.cache.key(of: place) { _ = self.startFetch(key, purpose: .background) }
            }
            await self.sleep(until: self.scheduler.wakeTime(after: now))
        }
    }

    private func schedule(_ key: TokenKey, at due: Double) {
        guard let slot = self.slots[key] else { return }
        self.scheduler.schedule(slot.place, region: key.region, at: due)
        self.wake(before: due)
    }

    private func sleep(until time: Double) async {
        guard time > self.clock.monotonicNow() else { return }
        let clock = self.clock
        let sleeper = Task { _ = try? await clock.sleep(until: time) }
        self.sleeper = sleeper
        self.sleepingUntil = time
        await withTaskCancellationHandler {
            await sleeper.value
        } onCancel: {
            sleeper.cancel()
        }
        self.sleeper = nil
        self.sleepingUntil = .infinity
    }

    /// Cuts the refresher's sleep short when something became due before it would wake.
    private func wake(before time: Double) {
        if time < self.sleepingUntil { self.sleeper?.cancel() }
    }

    // MARK: Introspection

    public func statuses() -> [TokenStatus] {
        let now = self.clock.monotonicNow()
        let unixOffset = self.clock.unixOffset()
        return self.slots.map { key, slot in
            let token = self.cache.held(at: slot.place)?.live
            let state: TokenState
            switch token {
            case .none: state = .missing
            case .some(let token) where token.isFresh(at: now): state = .valid
            case .some(let token) where token.isUnexpired(at: now): state = .stale
            case .some: state = .expired
            }
            return TokenStatus(
                key: key,
                state: state,
                expiresAt: token.map(\.expiresAtUnix),
                nextRefreshAt: (self.scheduler.due(of: slot.place) ?? (self.scheduler.isQueued(slot.place) || slot.fetch != nil ? now : nil))
                    .map { $0 + unixOffset },
                lastRefreshAt: slot.lastRefreshAt,
                consecutiveFailures: slot.failures,
                lastError: slot.lastError.map { "\($0)" },
                failureClass: slot.lastError?.failureClass
            )
        }.sorted { $0.key < $1.key }
    }

    /// What the engine is doing: fetches in flight, keys waiting for their region's pacing, and
    /// the next scheduled refresh (a monotonic moment, see `BrokerClock`).
    public func activity() -> (inFlight: Int, queued: Int, nextDue: Double?) {
        let inFlight = self.slots.values.reduce(0) { $0 + ($1.fetch != nil ? 1 : 0) }
        let backlog = self.scheduler.backlog()
        return (inFlight, backlog.queued, backlog.nextDue)
    }

    public func validTokenCount() -> Int {
        self.cache.freshCount(at: self.clock.monotonicNow())
    }

    /// How many of `tenants` are tracked, and how many valid tokens they hold: `broker.health` for
    /// a caller who may see only those. Costs a lookup per named tenant, not a scan of every key.
    public func counts(visible: (String) -> Bool) -> (tenants: Int, validTokens: Int) {
        let now = self.clock.monotonicNow()
        var tenants = Set<String>()
        var valid = 0
        for key in self.slots.keys where visible(key.tenant) {
            tenants.insert(key.tenant)
            if self.heldToken(for: key)?.isFresh(at: now) == true { valid += 1 }
        }
        return (tenants.count, valid)
    }
}
