import BrokerCore
import BrokerPostgres

/// The broker's own JSON-RPC methods: health, tokens, tenants, modules.
public struct BrokerMethods: Sendable {
    let tokens: TokenManager
    let store: any BrokerStore
    let registry: ModuleRegistry
    let access: AccessControl
    let clientKeys: ClientKeyVerifier
    /// The cluster this broker belongs to; nil on a single host.
    let cluster: ClusterView?
    let startedAt: ContinuousClock.Instant

    public init(
        tokens: TokenManager,
        store: any BrokerStore,
        registry: ModuleRegistry,
        access: AccessControl,
        clientKeys: ClientKeyVerifier,
        cluster: ClusterView? = nil
    ) {
        self.tokens = tokens
        self.store = store
        self.registry = registry
        self.access = access
        self.clientKeys = clientKeys
        self.cluster = cluster
        self.startedAt = .now
    }

    /// Every method the broker answers itself (modules add theirs): what `access grant` checks
    /// method names against. `handlers` asserts that it answers exactly these.
    public static let names: Set<String> = [
        "broker.health", "broker.status", "token.get", "token.invalidate", "tenant.list", "broker.reload", "token.refresh",
        "broker.refresh_failing", "broker.metrics", "module.list",
    ]

    public var handlers: [String: RPCDispatcher.Handler] {
        let handlers = self.allHandlers
        assert(Set(handlers.keys) == Self.names, "BrokerMethods.names lists every handler")
        return handlers
    }

    private var allHandlers: [String: RPCDispatcher.Handler] {
        [
            "broker.health": { params, context throws(RPCError) in try await self.health(params, peer: context.peer) },
            "broker.status": { params, _ throws(RPCError) in try await self.status(params) },
            "token.get": { params, _ throws(RPCError) in try await self.tokenGet(params) },
            "token.invalidate": { params, _ throws(RPCError) in try await self.tokenInvalidate(params) },
            "tenant.list": { params, context throws(RPCError) in try await self.tenantList(params, peer: context.peer) },
            "broker.reload": { params, _ throws(RPCError) in try await self.reload(params) },
            "token.refresh": { params, _ throws(RPCError) in try await self.tokenRefresh(params) },
            "broker.refresh_failing": { params, _ throws(RPCError) in try await self.refreshFailing(params) },
            "broker.metrics": { params, _ throws(RPCError) in
                _ = try Self.reader(params, allowed: [])
                return .string(await MetricsExporter(tokens: self.tokens).render())
            },
            "module.list": { params, _ throws(RPCError) in
                _ = try Self.reader(params, allowed: [])
                return self.registry.listing
            },
        ]
    }

    static func reader(_ params: JSONValue?, allowed: Set<String>) throws(RPCError) -> ParamReader {
        do throws(ModuleError) {
            return try ParamReader(params, allowed: allowed)
        } catch {
            throw RPCError(error)
        }
    }

    private static func tenantAndRegion(_ reader: ParamReader) throws(RPCError) -> (tenant: String, region: String?) {
        do throws(ModuleError) {
            return (try reader.tenantID("tenant"), try reader.optionalRegion("region"))
        } catch {
            throw RPCError(error)
        }
    }

    private var uptime: Int64 { (ContinuousClock.now - self.startedAt).components.seconds }

    /// `broker.health`: counts only the tenants (and their tokens) the caller may see.
    func health(_ params: JSONValue?, peer: PeerCredentials) async throws(RPCError) -> JSONValue {
        _ = try Self.reader(params, allowed: [])
        let counts: (tenants: Int, validTokens: Int)
        let policy = self.access.current
        if !policy.seesEveryTenant(uid: peer.uid, groups: peer.groups) {
            counts = await self.tokens.counts { policy.canSee(tenant: $0, uid: peer.uid, groups: peer.groups) }
        } else {
            counts = (self.tokens.cache.tenantCount, await self.tokens.validTokenCount())
        }
        // A store that does not answer makes the broker degraded, not down: cached tokens are
        // still served. `sobot-broker health` and probes tell the two apart.
        let storeReachable = (try? await self.store.changeMarker()) != nil
        var health: [String: JSONValue] = [
            "status": storeReachable ? "ok" : "degraded",
            "store_reachable": .bool(storeReachable),
            "version": .string(BrokerVersion.current),
            "uptime_s": .integer(self.uptime),
            "tenants": .integer(Int64(counts.tenants)),
            "tokens_valid": .integer(Int64(counts.validTokens)),
            "store": .string(self.store.backend.rawValue),
        ]
        if let cluster = self.cluster {
            health["members"] = .integer(Int64(cluster.liveMembers()))
        }
        return .object(health)
    }

    /// `token.get`: served from the cache without touching the actor while the token is fresh.
    func tokenGet(_ params: JSONValue?) async throws(RPCError) -> JSONValue {
        let request = try Self.tenantAndRegion(try Self.reader(params, allowed: ["tenant", "region"]))
        let now = self.tokens.clock.monotonicNow()
        if let served = self.tokens.cache.servable(tenant: request.tenant, region: request.region, now: now) {
            return Self.tokenResult(key: served.key, token: served.token, now: now)
        }
        do throws(TokenError) {
            let key = try await self.tokens.resolve(tenant: request.tenant, region: request.region)
            let token = try await self.tokens.token(for: key)
            return Self.tokenResult(key: key, token: token, now: self.tokens.clock.monotonicNow())
        } catch {
            throw RPCError(error)
        }
    }

    func tokenInvalidate(_ params: JSONValue?) async throws(RPCError) -> JSONValue {
        let reader = try Self.reader(params, allowed: ["tenant", "region", "token"])
        let request = try Self.tenantAndRegion(reader)
        let reported: String
        do throws(ModuleError) {
            reported = try reader.string("token")
        } catch {
            throw RPCError(error)
        }
        do throws(TokenError) {
            let key = try await self.tokens.resolve(tenant: request.tenant, region: request.region)
            let token = try await self.tokens.invalidate(key, reported: reported)
            return Self.tokenResult(key: key, token: token, now: self.tokens.clock.monotonicNow())
        } catch {
            throw RPCError(error)
        }
    }

    /// `token.refresh`: the operator's `refresh TENANT`. Answers like `token.get` without the token,
    /// since its caller is a person at a terminal, not a service that needs it.
    func tokenRefresh(_ params: JSONValue?) async throws(RPCError) -> JSONValue {
        let request = try Self.tenantAndRegion(try Self.reader(params, allowed: ["tenant", "region"]))
        do throws(TokenError) {
            let key = try await self.tokens.resolve(tenant: request.tenant, region: request.region)
            return Self.refreshResult(key: key, outcome: .success(try await self.tokens.refreshNow(key)))
        } catch {
            throw RPCError(error)
        }
    }

    /// `broker.refresh_failing`: `refresh --failing`, every key whose last fetch failed, at once;
    /// one entry per key, each with its own outcome.
    func refreshFailing(_ params: JSONValue?) async throws(RPCError) -> JSONValue {
        _ = try Self.reader(params, allowed: [])
        let tokens = self.tokens
        let results = await withTaskGroup(of: JSONValue.self) { group in
            for key in await tokens.failingKeys() {
                group.addTask {
                    do throws(TokenError) {
                        return Self.refreshResult(key: key, outcome: .success(try await tokens.refreshNow(key)))
                    } catch {
                        return Self.refreshResult(key: key, outcome: .failure(RPCError(error)))
                    }
                }
            }
            return await group.reduce(into: [JSONValue]()) { $0.append($1) }
        }
        let sorted = results.sorted {
            ($0["tenant"]?.stringValue ?? "", $0["region"]?.stringValue ?? "") < ($1["tenant"]?.stringValue ?? "", $1["region"]?.stringValue ?? "")
        }
        return ["refreshed": .array(sorted)]
    }

    private static func refreshResult(key: TokenKey, outcome: Result<LiveToken, RPCError>) -> JSONValue {
        var result: [String: JSONValue] = ["tenant": .string(key.tenant), "region": .string(key.region)]
        switch outcome {
        case .success(let token):
            result["expires_at"] = .integer(token.expiresAtUnix)
        case .failure(let error):
            result["error"] = ["code": .integer(Int64(error.code)), "message": .string(error.message)]
        }
        return .object(result)
    }

    static func tokenResult(key: TokenKey, token: LiveToken, now: Double) -> JSONValue {
        [
            "tenant": .string(key.tenant),
            "region": .string(key.region),
            "token": .string(token.value),
            "expires_at": .integer(token.expiresAtUnix),
            "expires_in": .integer(max(0, Int64(token.expiresAt - now))),
        ]
    }

    /// `broker.reload`: re-reads credentials, access rules and client keys now (the daemon also
    /// notices changes by itself within a few seconds).
    func reload(_ params: JSONValue?) async throws(RPCError) -> JSONValue {
        _ = try Self.reader(params, allowed: [])
        do {
            try await BrokerReload(store: self.store, tokens: self.tokens, access: self.access, clientKeys: self.clientKeys)()
        } catch {
            throw .internalError("reload failed: \(error)")
        }
        return [
            "tenants": .integer(Int64(self.tokens.cache.tenantCount)),
            "access_rules": .integer(Int64(self.access.current.rules.count)),
            "client_keys": .integer(Int64(self.clientKeys.count)),
        ]
    }

    func tenantList(_ params: JSONValue?, peer: PeerCredentials) async throws(RPCError) -> JSONValue {
        _ = try Self.reader(params, allowed: [])
        let policy = self.access.current
        let summaries: [TenantSummary]
        do {
            summaries = try await self.store.summaries()
        } catch {
            throw .internalError("cannot read tenants: \(error)")
        }
        var states: [TokenKey: TokenStatus] = [:]
        for status in await self.tokens.statuses() { states[status.key] = status }
        let visible = summaries.filter { policy.canSee(tenant: $0.id, uid: peer.uid, groups: peer.groups) }
        let tenants: [JSONValue] = visible.map { tenant in
            var object: [String: JSONValue] = ["id": .string(tenant.id), "name": tenant.name.map(JSONValue.string) ?? .null]
            object["regions"] = .array(
                tenant.regions.map { region in
                    let status = states[TokenKey(tenant: tenant.id, region: region.region)]
                    var entry: [String: JSONValue] = [
                        "region": .string(region.region),
                        "appid": .string(region.appid),
                        "token_state": .string(status?.state.rawValue ?? TokenState.missing.rawValue),
                    ]
                    if let expiresAt = status?.expiresAt { entry["expires_at"] = .integer(expiresAt) }
                    return .object(entry)
                }
            )
            return .object(object)
        }
        return ["tenants": .array(tenants)]
    }

    /// `broker.status`: the engine's view of every key, for the `status` command.
    func status(_ params: JSONValue?) async throws(RPCError) -> JSONValue {
        _ = try Self.reader(params, allowed: [])
        let now = self.tokens.clock.unixNow()
        // In a cluster, who stored each token and who is alive; a database that does not answer
        // leaves them out rather than failing the whole report.
        let refreshers = (try? await self.cluster?.refreshers()) ?? [:]
        let members = (try? await self.cluster?.members()) ?? []
        let entries: [JSONValue] = await self.tokens.statuses().map { status in
            var entry: [String: JSONValue] = [
                "tenant": .string(status.key.tenant),
                "region": .string(status.key.region),
                "state": .string(status.state.rawValue),
                "failures": .integer(Int64(status.consecutiveFailures)),
            ]
            if let expiresAt = status.expiresAt { entry["expires_at"] = .integer(expiresAt) }
            if let next = status.nextRefreshAt { entry["next_refresh_at"] = .integer(Int64(next.rounded(.up))) }
            if let last = status.lastRefreshAt { entry["last_refresh_at"] = .integer(Int64(last)) }
            if let error = status.lastError { entry["last_error"] = .string(error) }
            if let broker = refreshers[status.key] { entry["refreshed_by"] = .string(broker) }
            return .object(entry)
        }
        var report: [String: JSONValue] = ["now": .integer(Int64(now)), "uptime_s": .integer(self.uptime), "tokens": .array(entries)]
        if self.cluster != nil {
            report["members"] = .array(
                members.map { member in
                    [
                        "id": .string(member.id), "host": .string(member.host), "pid": .integer(Int64(member.pid)),
                        "version": .string(member.version), "seen_s_ago": .integer(Int64(member.secondsSinceSeen.rounded())),
                    ]
                }
            )
        }
        return .object(report)
    }
}

/// What a broker of a cluster can tell about the cluster, for `broker.health` and `broker.status`.
public struct ClusterView: Sendable {
    /// Brokers seen alive in the last 30 s, as of the last heartbeat: no database read.
    public let liveMembers: @Sendable () -> Int
    public let members: @Sendable () async throws -> [ClusterMember]
    /// The broker that stored each key's current token.
    public let refreshers: @Sendable () async throws -> [TokenKey: String]

    public init(
        liveMembers: @escaping @Sendable () -> Int,
        members: @escaping @Sendable () async throws -> [ClusterMember],
        refreshers: @escaping @Sendable () async throws -> [TokenKey: String]
    ) {
        self.liveMembers = liveMembers
        self.members = members
        self.refreshers = refreshers
    }
}
