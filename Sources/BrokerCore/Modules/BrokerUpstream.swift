import Logging
import NIOCore
import NIOPosix

/// The broker's `UpstreamCalling`: the token manager supplies the token, `SobotClient` makes the call
/// (whole forwarded calls to a plain-HTTP base URL go through the `EventLoopForwarder` instead).
///
/// On `900002` (token expired) it reports the token with compare-and-refresh and retries exactly
/// once with the fresh token; a second `900002` surfaces as an error, never a loop. `900001` (token
/// empty) can only be a broker bug, so it is logged and reported as an internal error.
public struct BrokerUpstream: UpstreamCalling {
    let tokens: TokenManager
    let client: SobotClient
    let store: any BrokerStore
    let forwarder: EventLoopForwarder?
    let logger: Logger

    public init(tokens: TokenManager, client: SobotClient, store: any BrokerStore, forwarder: EventLoopForwarder? = nil, logger: Logger) {
        self.tokens = tokens
        self.client = client
        self.store = store
        self.forwarder = forwarder
        self.logger = logger
    }

    /// One whole call with `token`: over the forwarder's keep-alive connections when the region's base
    /// URL is plain HTTP, else through `SobotClient` (AsyncHTTPClient, TLS).
    private func forward(_ call: SobotCall, region: String, token: String) async throws(SobotError) -> SobotCallReply {
        guard let forwarder = self.forwarder, forwarder.canForward(region: region) else {
            return try await self.client.forward(call, region: region, token: token)
        }
        do {
            return try await forwarder.forward(call, region: region, token: token, on: NIOSingletons.posixEventLoopGroup.any()).get()
        } catch let error as SobotError {
            throw error
        } catch {
            throw .unavailable("\(error)")
        }
    }

    public func post(tenant: String, region: String?, path: String, body: JSONValue) async throws(ModuleError) -> JSONValue {
        try await self.withFreshToken(tenant: tenant, region: region) { key, token throws(ModuleError) in
            do throws(SobotError) {
                return .finished(try await self.client.post(region: key.region, path: path, token: token.value, body: body))
            } catch .rejected(SobotReturnCode.tokenExpired, let message) {
                return .tokenExpired(asItCame: .failure(ModuleError(SobotError.rejected(retCode: SobotReturnCode.tokenExpired, retMsg: message))))
            } catch .rejected(SobotReturnCode.tokenEmpty, _) {
                self.logger.error("upstream says the token header was empty: a broker bug", metadata: ["key": "\(key)"])
                throw .internalError("the upstream received no token (900001)")
            } catch {
                throw ModuleError(error)
            }
        }
    }

    public func send(_ call: SobotCall) async throws(ModuleError) -> SobotCallReply {
        try await self.withFreshToken(tenant: call.tenant, region: call.region) { key, token throws(ModuleError) in
            let reply: SobotCallReply
            do throws(SobotError) {
                reply = try await self.forward(call, region: key.region, token: token.value)
            } catch {
                throw ModuleError(error)
            }
            return SobotClient.saysTokenExpired(reply.body) ? .tokenExpired(asItCame: .success(reply)) : .finished(reply)
        }
    }

    /// The second attempt of a call whose first attempt, made elsewhere with `reported`, was answered
    /// `900002`: reports that token (compare-and-refresh) and sends once more with the fresh one.
    /// Whatever comes back is returned as it came: a second `900002` in a row included.
    public func resend(_ call: SobotCall, key: TokenKey, afterExpiredToken reported: String) async throws(ModuleError) -> SobotCallReply {
        self.logger.info("upstream says token expired; refreshing once", metadata: ["key": "\(key)"])
        let token: LiveToken
        do throws(TokenError) {
            token = try await self.tokens.invalidate(key, reported: reported)
        } catch {
            throw ModuleError(error)
        }
        do throws(SobotError) {
            return try await self.forward(call, region: key.region, token: token.value)
        } catch {
            throw ModuleError(error)
        }
    }

    /// How one call with a token ended.
    private enum Attempt<Value> {
        case finished(Value)
        /// Sobot said `900002`; `asItCame` is what the caller gets if it says so again after a refresh.
        case tokenExpired(asItCame: Result<Value, ModuleError>)
    }

    /// Runs `attempt` with the tenant's token. When Sobot says the token expired, the token is
    /// reported with compare-and-refresh and `attempt` runs once more with the fresh one; a second
    /// `900002` in a row ends as it came, never in a loop.
    private func withFreshToken<Value>(
        tenant: String,
        region: String?,
        _ attempt: (TokenKey, LiveToken) async throws(ModuleError) -> Attempt<Value>
    ) async throws(ModuleError) -> Value {
        let key: TokenKey
        var token: LiveToken
        do throws(TokenError) {
            key = try await self.tokens.resolve(tenant: tenant, region: region)
            token = try await self.tokens.token(for: key)
        } catch {
            throw ModuleError(error)
        }
        var retried = false
        while true {
            switch try await attempt(key, token) {
            case .finished(let value):
                return value
            case .tokenExpired(let asItCame):
                guard !retried else { return try asItCame.get() }
                retried = true
                self.logger.info("upstream says token expired; refreshing once", metadata: ["key": "\(key)"])
                do throws(TokenError) {
                    token = try await self.tokens.invalidate(key, reported: token.value)
                } catch {
                    throw ModuleError(error)
                }
            }
        }
    }

    public func regions(ofTenant tenant: String) async throws(ModuleError) -> [String] {
        do {
            return try await self.store.credentialKeys(ofTenant: tenant).map(\.region).sorted()
        } catch {
            throw .internalError("cannot read the tenant's regions: \(error)")
        }
    }

    public func tenantIDs() async throws(ModuleError) -> [String] {
        do {
            return try await self.store.summaries().map(\.id)
        } catch {
            throw .internalError("cannot list tenants: \(error)")
        }
    }
}
