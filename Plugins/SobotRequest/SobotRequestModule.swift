import BrokerModuleSDK

/// `sobot.request`: any Sobot v5 business endpoint through the broker, which adds the token and
/// handles `900002` (refresh, retry once). A module on the same SDK as every other, so the module
/// recipe in docs/modules.md is the one the broker itself follows.
public struct SobotRequestModule: EndpointModule {
    public let name = "sobot"
    public let status = ModuleStatus.active
    public let version = "1.0.0"
    public let summary = "Any Sobot v5 business endpoint, with the broker's token."

    static let params: Set<String> = ["tenant", "region", "path", "method", "query", "body", "language"]

    public init() {}

    public var methods: [ModuleMethod] {
        [
            ModuleMethod(
                name: "sobot.request",
                summary: "Call a Sobot business endpoint; returns its HTTP status and JSON reply as is.",
                params: Self.params.sorted(),
                forwardedCall: Self.record
            ) { params, context throws(ModuleError) in
                let call = try Self.call(from: params)
                let reply = try await context.upstream.send(call)
                guard let body = try? JSONParser.parse(reply.body) else {
                    throw .upstreamUnavailable("unreadable reply: HTTP \(reply.status) with a body that is not JSON")
                }
                return ["status": .integer(Int64(reply.status)), "body": body]
            }
        ]
    }

    /// Reads and checks the params: the path before anything else happens (see `SobotPath`).
    static func call(from params: JSONValue?) throws(ModuleError) -> SobotCall {
        let reader = try ParamReader(params, allowed: Self.params)
        let path = try SobotPath(validating: try reader.string("path"))
        let method: SobotCall.Method
        switch try reader.optionalString("method")?.uppercased() {
        case nil, "POST": method = .post
        case "GET": method = .get
        default: throw .invalidParams("method must be GET or POST")
        }
        let query: SobotQuery
        switch reader.members["query"] {
        case nil, .null?: query = .none
        case .object(let members)?: query = try SobotQuery(parameters: members)
        case let other?: throw .invalidParams("query must be an object, not \(other.typeName)")
        }
        var body: [UInt8]?
        if let value = reader.members["body"], value != .null {
            guard method == .post else { throw .invalidParams("a GET request has no body") }
            body = JSONWriter.bytes(value)
            guard body!.count <= SobotCall.maximumBodySize else {
                throw .invalidParams("body is larger than \(SobotCall.maximumBodySize >> 20) MiB")
            }
        } else if method == .post {
            body = JSONWriter.bytes(.object([:]))
        }
        let language = try reader.optionalString("language")
        guard language == nil || language == "en" || language == "zh" else { throw .invalidParams("language must be en or zh") }
        return SobotCall(
            tenant: try reader.tenantID("tenant"),
            region: try reader.optionalRegion("region"),
            method: method,
            path: path,
            query: query,
            body: body,
            contentType: body == nil ? nil : "application/json",
            language: language
        )
    }

    /// The audit record: method and path when the params were valid, and the status when Sobot answered.
    @Sendable static func record(params: JSONValue?, result: JSONValue?) -> ForwardedCallRecord? {
        guard let raw = params?["path"]?.stringValue, let path = try? SobotPath(validating: raw) else { return nil }
        let method = params?["method"]?.stringValue?.uppercased() == "GET" ? "GET" : "POST"
        let status = result?["status"]?.integerValue.flatMap { Int(exactly: $0) }
        return ForwardedCallRecord(httpMethod: method, path: path.value, status: status)
    }
}
