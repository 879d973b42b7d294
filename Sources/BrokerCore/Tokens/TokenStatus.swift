/// One (tenant, region) as the token engine sees it: what `status` and `tenant.list` report.
/// Times are Unix seconds.
public struct TokenStatus: Sendable {
    public var key: TokenKey
    public var state: TokenState
    public var expiresAt: Int64?
    public var nextRefreshAt: Double?
    public var lastRefreshAt: Double?
    public var consecutiveFailures: Int
    /// The last upstream or store error, secret-free; nil after a success.
    public var lastError: String?
    /// `TokenError.failureClass` of the last error; nil after a success.
    public var failureClass: String?
}

public enum TokenState: String, Sendable {
    /// Held and fresh: served from the cache.
    case valid
    /// Held and unexpired, but below its serving margin: refreshed before it is served again,
    /// or served as a last resort while the upstream fails.
    case stale
    case expired
    /// Never obtained (yet).
    case missing
}
