import Logging

/// Calls Sobot's business endpoints on a tenant's behalf, with the broker's token.
public protocol UpstreamCalling: Sendable {
    /// POSTs `body` to `path` for (tenant, region?) and returns the reply object once `ret_code` is
    /// `000000`. Handles the token, and the "token expired" (900002) refresh-and-retry-once rule.
    func post(tenant: String, region: String?, path: String, body: JSONValue) async throws(ModuleError) -> JSONValue

    /// Every tenant id the broker knows, sorted: for cross-tenant (`"*"`) requests.
    func tenantIDs() async throws(ModuleError) -> [String]

    /// The regions `tenant` has credentials in, sorted: for fan-outs over tenants that may have several.
    func regions(ofTenant tenant: String) async throws(ModuleError) -> [String]

    /// Sends `call` with the tenant's token and returns Sobot's answer as it came, whatever its
    /// `ret_code`; on `900002` the token is refreshed (compare-and-refresh) and the call retried once.
    func send(_ call: SobotCall) async throws(ModuleError) -> SobotCallReply
}

extension UpstreamCalling {
    /// For upstreams that do not know (test doubles): none known, so a fan-out asks each tenant once.
    public func regions(ofTenant tenant: String) async throws(ModuleError) -> [String] { [] }

    /// For upstreams that only post (test doubles): forwarding is not available.
    public func send(_ call: SobotCall) async throws(ModuleError) -> SobotCallReply {
        throw .internalError("this upstream does not forward calls")
    }
}

/// The narrow view of the broker a module gets.
public struct ModuleContext: Sendable {
    public let upstream: any UpstreamCalling
    public let logger: Logger
    public let clock: any BrokerClock

    public init(upstream: any UpstreamCalling, logger: Logger, clock: any BrokerClock) {
        self.upstream = upstream
        self.logger = logger
        self.clock = clock
    }
}
