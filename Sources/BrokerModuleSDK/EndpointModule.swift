/// Whether a module serves real calls or only reserves its namespace.
public enum ModuleStatus: String, Sendable {
    case active
    case placeholder
}

/// One JSON-RPC method a module provides.
public struct ModuleMethod: Sendable {
    public typealias Handler = @Sendable (_ params: JSONValue?, _ context: ModuleContext) async throws(ModuleError) -> JSONValue

    /// Full name, `namespace.method…` (for example `marketing.catalog.query`).
    public let name: String
    public let summary: String
    /// Parameter names, as documentation for `module.list`.
    public let params: [String]
    public let handler: Handler
    /// For a method that forwards a Sobot call: what the audit log records of it, read from its
    /// params and its result (nil when it failed). Nil for other methods.
    public let forwardedCall: (@Sendable (_ params: JSONValue?, _ result: JSONValue?) -> ForwardedCallRecord?)?

    public init(
        name: String,
        summary: String,
        params: [String],
        forwardedCall: (@Sendable (_ params: JSONValue?, _ result: JSONValue?) -> ForwardedCallRecord?)? = nil,
        handler: @escaping Handler
    ) {
        self.name = name
        self.summary = summary
        self.params = params
        self.forwardedCall = forwardedCall
        self.handler = handler
    }
}

/// A Sobot business API exposed as JSON-RPC methods. Modules see only a `ModuleContext`: never the
/// store, the keyring or an app key, and they never handle tokens themselves.
public protocol EndpointModule: Sendable {
    /// The method namespace: every method name starts with `name + "."`.
    var name: String { get }
    var status: ModuleStatus { get }
    var version: String { get }
    var summary: String { get }
    var methods: [ModuleMethod] { get }
}
