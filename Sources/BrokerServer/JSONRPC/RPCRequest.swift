import BrokerCore

/// One JSON-RPC 2.0 request, validated. `id == nil` marks a notification (no reply).
public struct RPCRequest: Sendable {
    public var id: JSONValue?
    public var method: String
    public var params: JSONValue?

    public var isNotification: Bool { self.id == nil }

    /// Validates `value` as a request object. On failure returns the error and, when it could be
    /// read, the id to answer with (the spec answers with `null` when it cannot).
    /// A request that failed validation, and the id to answer it with.
    struct Rejection: Error {
        var id: JSONValue
        var error: RPCError
    }

    static func validate(_ value: JSONValue) -> Result<RPCRequest, Rejection> {
        guard case .object(let members) = value else {
            return .failure(Rejection(id: .null, error: .invalidRequest("a request must be a JSON object, not \(value.typeName)")))
        }
        let id = members["id"]
        switch id {
        case .none, .some(.null), .some(.string), .some(.integer), .some(.bigInteger), .some(.double): break
        default:
            return .failure(Rejection(id: .null, error: .invalidRequest("id must be a string, a number or null")))
        }
        let replyID = id ?? .null
        guard members["jsonrpc"] == .string("2.0") else {
            return .failure(Rejection(id: replyID, error: .invalidRequest("jsonrpc must be \"2.0\"")))
        }
        guard case .string(let method) = members["method"] else {
            return .failure(Rejection(id: replyID, error: .invalidRequest("method must be a string")))
        }
        let params = members["params"]
        switch params {
        case .none, .some(.object), .some(.array): break
        default:
            return .failure(Rejection(id: replyID, error: .invalidRequest("params must be an object or an array")))
        }
        return .success(RPCRequest(id: id, method: method, params: params))
    }
}
