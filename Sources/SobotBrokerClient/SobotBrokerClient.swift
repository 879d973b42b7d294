import BrokerModuleSDK
import Foundation

/// A token as the broker serves it. Its description never shows the token itself.
public struct BrokerToken: Sendable, Equatable, CustomStringConvertible {
    public var value: String
    public var tenant: String
    public var region: String
    /// Unix seconds.
    public var expiresAt: Int64
    public var expiresIn: Int64

    public var description: String { "token for \(self.tenant)/\(self.region), expires in \(self.expiresIn) s" }
}

/// Sobot's answer to `sobot.request`: its HTTP status and JSON reply, as they came.
public struct SobotResponse: Sendable, Equatable {
    public var status: Int
    public var body: JSONValue

    /// Sobot's `ret_code`, if the reply has one.
    public var returnCode: String? { self.body["ret_code"]?.stringValue }
}

/// The broker's client for Swift services: JSON-RPC over the daemon's Unix socket, with typed errors.
/// It depends on no server target; the broker's command line uses it too.
///
/// ```swift
/// let broker = SobotBrokerClient()
/// let reply = try await broker.request(tenant: "acme", path: "/api/ws/5/ticket/query", body: ["page_no": 1])
/// let summary = try await broker.withToken(tenant: "acme") { token in try await callSobot(token: token) }
/// ```
public struct SobotBrokerClient: Sendable {
    public let socketPath: String
    public var timeoutSeconds: Int

    /// - Parameter socketPath: the daemon's socket; by default `$SOBOT_BROKER_SOCKET`, else
    ///   `<home>/broker.sock` with the home from `$SOBOT_BROKER_HOME`, `$XDG_STATE_HOME/sobot-broker`
    ///   or `~/.local/state/sobot-broker`, as the daemon resolves them.
    public init(socketPath: String? = nil, timeoutSeconds: Int = 30) {
        self.socketPath = socketPath ?? Self.defaultSocketPath(environment: ProcessInfo.processInfo.environment)
        self.timeoutSeconds = timeoutSeconds
    }

    public static func defaultSocketPath(environment: [String: String]) -> String {
        if let socket = environment["SOBOT_BROKER_SOCKET"], !socket.isEmpty { return socket }
        if let home = environment["SOBOT_BROKER_HOME"], !home.isEmpty { return home + "/broker.sock" }
        if let state = environment["XDG_STATE_HOME"], !state.isEmpty { return state + "/sobot-broker/broker.sock" }
        return (environment["HOME"] ?? "") + "/.local/state/sobot-broker/broker.sock"
    }

    // MARK: Calls

    /// Any method; its result, or the daemon's error as `BrokerCallError.rejected`.
    public func call(_ method: String, params: JSONValue? = nil) async throws(BrokerCallError) -> JSONValue {
        let client = self
        let result: Result<JSONValue, BrokerCallError> = await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(returning: Result { () throws(BrokerCallError) in try client.callBlocking(method, params: params) })
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        return try result.get()
    }

    /// `call` on the calling thread, blocking it: for command-line tools.
    public func callBlocking(_ method: String, params: JSONValue? = nil) throws(BrokerCallError) -> JSONValue {
        var request: [String: JSONValue] = ["jsonrpc": "2.0", "id": 1, "method": .string(method)]
        if let params { request["params"] = params }
        var line = JSONWriter.bytes(.object(request))
        line.append(0x0a)
        let connection = try BrokerLineConnection(socketPath: self.socketPath, timeoutSeconds: self.timeoutSeconds)
        try connection.send(line)
        let replyLine = try connection.readLine()
        guard let reply = try? JSONParser.parse(replyLine) else { throw .badReply("not JSON") }
        if let result = reply["result"] { return result }
        guard let error = reply["error"], let code = error["code"]?.integerValue, let exact = Int(exactly: code) else {
            throw .badReply("neither a result nor an error")
        }
        throw .rejected(code: exact, message: error["message"]?.stringValue ?? "", data: error["data"])
    }

    public func health() async throws(BrokerCallError) -> JSONValue {
        try await self.call("broker.health")
    }

    public func token(tenant: String, region: String? = nil) async throws(BrokerCallError) -> BrokerToken {
        try Self.token(from: try await self.call("token.get", params: .object(Self.scope(tenant, region))))
    }

    /// Compare-and-refresh: a new token if `token` is still the current one, else the current one.
    public func invalidate(tenant: String, region: String? = nil, token: String) async throws(BrokerCallError) -> BrokerToken {
        var params = Self.scope(tenant, region)
        params["token"] = .string(token)
        return try Self.token(from: try await self.call("token.invalidate", params: .object(params)))
    }

    /// Any Sobot business endpoint through the broker (`sobot.request`), which adds the token and
    /// handles `900002` itself.
    public func request(
        tenant: String,
        region: String? = nil,
        path: String,
        method: String = "POST",
        query: [String: JSONValue]? = nil,
        body: JSONValue? = nil,
        language: String? = nil
    ) async throws(BrokerCallError) -> SobotResponse {
        var params = Self.scope(tenant, region)
        params["path"] = .string(path)
        params["method"] = .string(method)
        if let query { params["query"] = .object(query) }
        if let body { params["body"] = body }
        if let language { params["language"] = .string(language) }
        let result = try await self.call("sobot.request", params: .object(params))
        guard let status = result["status"]?.integerValue.flatMap({ Int(exactly: $0) }), let body = result["body"] else {
            throw .badReply("sobot.request answered without status and body")
        }
        return SobotResponse(status: status, body: body)
    }

    /// Runs `body` with the tenant's token. When `body` throws `SobotTokenExpired` (Sobot answered
    /// `900002`), the token is reported with `token.invalidate` and `body` runs once more with the
    /// fresh one; a second `SobotTokenExpired` is thrown to the caller, never looped on.
    public func withToken<Result: Sendable>(
        tenant: String,
        region: String? = nil,
        _ body: (String) async throws -> Result
    ) async throws -> Result {
        let first = try await self.token(tenant: tenant, region: region)
        do {
            return try await body(first.value)
        } catch is SobotTokenExpired {
            let fresh = try await self.invalidate(tenant: tenant, region: region, token: first.value)
            return try await body(fresh.value)
        }
    }

    private static func scope(_ tenant: String, _ region: String?) -> [String: JSONValue] {
        var params: [String: JSONValue] = ["tenant": .string(tenant)]
        if let region { params["region"] = .string(region) }
        return params
    }

    private static func token(from result: JSONValue) throws(BrokerCallError) -> BrokerToken {
        guard let value = result["token"]?.stringValue, let tenant = result["tenant"]?.stringValue, let region = result["region"]?.stringValue,
            let expiresAt = result["expires_at"]?.integerValue, let expiresIn = result["expires_in"]?.integerValue
        else { throw .badReply("a token reply without token, tenant, region, expires_at and expires_in") }
        return BrokerToken(value: value, tenant: tenant, region: region, expiresAt: expiresAt, expiresIn: expiresIn)
    }
}
