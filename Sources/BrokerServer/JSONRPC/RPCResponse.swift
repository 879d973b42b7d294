import BrokerCore

/// Builds reply objects. Replies always carry `"jsonrpc":"2.0"` and the request's id.
enum RPCResponse {
    static func success(id: JSONValue, result: JSONValue) -> JSONValue {
        ["jsonrpc": "2.0", "id": id, "result": result]
    }

    static func failure(id: JSONValue, error: RPCError) -> JSONValue {
        ["jsonrpc": "2.0", "id": id, "error": error.json]
    }

    /// One reply line: the encoded reply plus the `\n` terminator.
    static func line(_ reply: JSONValue) -> [UInt8] {
        var bytes = JSONWriter.bytes(reply)
        bytes.append(0x0a)
        return bytes
    }
}
