import Logging

/// The broker's `UpstreamCalling`: the token manager supplies the token, `SobotClient` makes the call.
///
/// On `900002` (token expired) it reports the token with compare-and-refresh and retries exactly
/// once with the fresh token; a second `900002` surfaces as an error, never a loop. `900001` (token
/// empty) can only be a broker bug, so it is logged and reported as an internal error.
public struct BrokerUpstream: UpstreamCalling {
    let tokens: TokenManager
    let client: SobotClient
    let store: any BrokerStore
    let logger: Logger

    public init(tokens: TokenManager, client: SobotClient, store: any BrokerStore, logger: Logger) {
        self.tokens = tokens
        self.client = client
        self.store = store
        self.logger = logger
    }

    public func post(tenant: String, region: String?, path: String, body: JSONValue) async throws(ModuleError) -> JSONValue {
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
            do throws(SobotError) {
                return try await self.client.post(region: key.region, path: path, token: token.value, body: body)
            } catch .rejected(SobotReturnCode.tokenExpired, _) where !retried {
                retried = true
                self.logger.info("upstream says token expired; refreshing once", metadata: ["key": "\(key)"])
                do throws(TokenError) {
                    token = try await self.tokens.invalidate(key, reported: token.value)
                } catch {
                    throw ModuleError(error)
                }
            } catch .rejected(SobotReturnCode.tokenEmpty, _) {
                self.logger.error("upstream says the token header was empty: a broker bug", metadata: ["key": "\(key)"])
                throw .internalError("the upstream received no token (900001)")
            } catch {
                throw ModuleError(error)
            }
        }
    }

    public func send(_ call: SobotCall) async throws(ModuleError) -> SobotCallReply {
        let key: TokenKey
        var token: LiveToken
        do throws(TokenError) {
            key = try await self.tokens.resolve(tenant: call.tenant, region: call.region)
            token = try await self.tokens.token(for: key)
        } catch {
            throw ModuleError(error)
        }
        var retried = false
        while true {
            let reply: SobotCallReply
            do throws(SobotError) {
                reply = try await self.client.forward(call, region: key.region, token: token.value)
            } catch {
                throw ModuleError(error)
            }
            // A second 900002 in a row goes back as it came: never a loop.
            guard !retried, SobotClient.saysTokenExpired(reply.body) else { return reply }
            retried = true
            self.logger.info("upstream says token expired; refreshing once", metadata: ["key": "\(key)"])
            do throws(TokenError) {
                token = try await self.tokens.invalidate(key, reported: token.value)
            } catch {
                throw ModuleError(error)
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
