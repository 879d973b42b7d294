/// The contract's JSON-RPC error codes. The server's error replies, a module's per-tenant error
/// objects and the HTTP proxy's statuses all derive from these, so they always agree.
public enum ErrorCode {
    public static let parseError = -32700
    public static let invalidRequest = -32600
    public static let methodNotFound = -32601
    public static let invalidParams = -32602
    public static let internalError = -32603
    public static let unknownTenant = -32001
    public static let permissionDenied = -32002
    public static let upstreamRejected = -32003
    public static let upstreamUnavailable = -32004
}
