import BrokerCore
import NIOCore
import NIOHTTP1

/// One whole HTTP request as the proxy received it (head and body, within the proxy's bounds).
struct ProxyRequest: Sendable {
    var method: HTTPMethod
    var uri: String
    var headers: HTTPHeaders
    var body: ByteBuffer?
}

/// Decides what a proxy request is and answers it: the broker's own `/_broker/health` and
/// `/_broker/token`, or a Sobot call forwarded with the tenant's token. Socket-free: the server
/// hands it whole requests and writes what it returns.
///
/// A forwarded call is checked like a JSON-RPC caller of `sobot.request`: the caller's access
/// rules (a local caller) or client key (TCP), the path and query (`SobotPath`, `SobotQuery`)
/// before any network call, and the body's size.
struct ProxyRouter: Sendable {
    let dispatcher: RPCDispatcher
    let upstream: any UpstreamCalling
    let health: @Sendable () async -> JSONValue

    func respond(to request: ProxyRequest, context: CallContext) async -> ProxyResponse {
        let target = request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let rawPath = target.first.map(String.init) ?? ""
        let rawQuery = target.count > 1 ? String(target[1]) : ""
        if rawPath.hasPrefix("/_broker/") {
            return await self.brokerEndpoint(rawPath, query: rawQuery, method: request.method, context: context)
        }
        return await self.forward(request, rawPath: rawPath, rawQuery: rawQuery, context: context)
    }

    private func brokerEndpoint(_ path: String, query: String, method: HTTPMethod, context: CallContext) async -> ProxyResponse {
        guard method == .GET else {
            return .error(code: ErrorCode.invalidRequest, message: "invalid request: \(path) answers GET only")
        }
        switch path {
        case "/_broker/health":
            return .json(await self.health())
        case "/_broker/token":
            var params: [String: JSONValue] = [:]
            for pair in query.split(separator: "&") {
                let field = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let name = String(field[0])
                guard name == "tenant" || name == "region", field.count == 2, params[name] == nil else {
                    return .error(code: ErrorCode.invalidParams, message: "invalid params: /_broker/token takes tenant and region once each")
                }
                params[name] = .string(String(field[1]))
            }
            let reply = await self.dispatcher.reply(
                to: ["jsonrpc": "2.0", "id": 1, "method": "token.get", "params": .object(params)],
                context: context
            )
            if let result = reply?["result"] { return .json(result) }
            let error = reply?["error"]
            let code = error?["code"]?.integerValue.flatMap { Int(exactly: $0) } ?? ErrorCode.internalError
            return .error(RPCError(code: code, message: error?["message"]?.stringValue ?? "internal error", data: error?["data"]))
        default:
            return .error(code: ErrorCode.unknownTenant, message: "no such broker endpoint", status: .notFound)
        }
    }

    private func forward(_ request: ProxyRequest, rawPath: String, rawQuery: String, context: CallContext) async -> ProxyResponse {
        let tenant = request.headers.first(name: "x-sobot-tenant")
        let region = request.headers.first(name: "x-sobot-region")
        let outcome: Result<SobotCallReply, RPCError>
        var record: ForwardedCallRecord?
        do throws(RPCError) {
            let call = try Self.permittedCall(for: request, rawPath: rawPath, rawQuery: rawQuery, context: context, dispatcher: self.dispatcher)
            record = ForwardedCallRecord(httpMethod: call.method.rawValue, path: call.path.value, status: nil)
            do throws(ModuleError) {
                outcome = .success(try await self.upstream.send(call))
            } catch {
                throw RPCError(error)
            }
        } catch {
            outcome = .failure(error)
        }
        if case .success(let reply) = outcome { record?.status = reply.status }
        let validTenant = tenant.flatMap { Identifier.isValidTenantID($0) ? $0 : nil }
        let validRegion = region.flatMap { Identifier.isValidRegion($0) ? $0 : nil }
        self.dispatcher.auditForwarded(context: context, tenant: validTenant, region: validRegion, outcome: outcome, call: record)
        switch outcome {
        case .success(let reply):
            return ProxyResponse(
                status: HTTPResponseStatus(statusCode: reply.status),
                contentType: reply.contentType ?? "application/json",
                body: reply.body
            )
        case .failure(let error):
            return .error(error)
        }
    }

    /// The Sobot call a request stands for, once its `X-Sobot-Tenant` is there, the caller may make it
    /// (as a caller of `sobot.request`) and `call(for:…)` accepts it: what both the general path and
    /// `ProxyFastPath` check before anything is forwarded.
    static func permittedCall(
        for request: ProxyRequest,
        rawPath: String,
        rawQuery: String,
        context: CallContext,
        dispatcher: RPCDispatcher
    ) throws(RPCError) -> SobotCall {
        guard let tenant = request.headers.first(name: "x-sobot-tenant") else {
            throw RPCError(code: ErrorCode.invalidRequest, message: "invalid request: the X-Sobot-Tenant header is required")
        }
        let region = request.headers.first(name: "x-sobot-region")
        var params: [String: JSONValue] = ["tenant": .string(tenant)]
        if let region { params["region"] = .string(region) }
        if let refusal = dispatcher.refusal(of: "sobot.request", params: .object(params), context: context) { throw refusal }
        return try Self.call(for: request, tenant: tenant, region: region, rawPath: rawPath, rawQuery: rawQuery)
    }

    /// The Sobot call a request stands for, refused (400) when its method, path, query, body or
    /// headers are not ones the broker forwards.
    static func call(for request: ProxyRequest, tenant: String, region: String?, rawPath: String, rawQuery: String) throws(RPCError) -> SobotCall {
        do throws(ModuleError) {
            guard let method = SobotCall.Method(rawValue: request.method.rawValue) else {
                throw .invalidParams("method \(request.method.rawValue.count <= 16 ? request.method.rawValue : "?") is not forwarded (GET, POST, PUT, DELETE)")
            }
            let path = try SobotPath(validating: rawPath)
            let query = try SobotQuery(validatingEncoded: rawQuery)
            let language = request.headers.first(name: "language")
            guard language == nil || language == "en" || language == "zh" else { throw .invalidParams("the language header must be en or zh") }
            let contentType = request.headers.first(name: "content-type")
            guard contentType.map(Self.isHeaderValue) ?? true else { throw .invalidParams("the content-type header is not a plain header value") }
            let body = request.body.map { Array(buffer: $0) }
            return SobotCall(
                tenant: tenant,
                region: region,
                method: method,
                path: path,
                query: query,
                body: body?.isEmpty == false ? body : nil,
                contentType: contentType,
                language: language
            )
        } catch {
            throw RPCError(error)
        }
    }

    /// Printable ASCII of at most 256 bytes: what may be sent on as a header value.
    static func isHeaderValue(_ text: String) -> Bool {
        text.utf8.count <= 256 && text.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7f }
    }
}

/// The proxy's checks of a request's method, target and headers on their own, as the fuzzer drives
/// them: the call that would be forwarded, or the refusal.
public enum ProxyRequestCheck {
    public static func check(method: String, uri: String, headers: [(String, String)]) -> Result<SobotCall, RPCError> {
        let target = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let request = ProxyRequest(method: HTTPMethod(rawValue: method), uri: uri, headers: HTTPHeaders(headers), body: nil)
        return Result { () throws(RPCError) in
            try ProxyRouter.call(
                for: request,
                tenant: "t",
                region: nil,
                rawPath: target.first.map(String.init) ?? "",
                rawQuery: target.count > 1 ? String(target[1]) : ""
            )
        }
    }
}
