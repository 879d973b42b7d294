#if canImport(Glibc)
import Glibc
#endif
import BrokerCore

/// A small blocking JSON-RPC client over the Unix socket, for the command-line tools.
public struct BrokerClient: Sendable {
    public let socketPath: String
    public var timeoutSeconds: Int

    public init(socketPath: String, timeoutSeconds: Int = 120) {
        self.socketPath = socketPath
        self.timeoutSeconds = timeoutSeconds
    }

    /// Sends one request and returns its result, or the error object the daemon replied with.
    public func call(_ method: String, params: JSONValue? = nil) throws(BrokerClientError) -> Result<JSONValue, RPCError> {
        var request: [String: JSONValue] = ["jsonrpc": "2.0", "id": 1, "method": .string(method)]
        if let params { request["params"] = params }
        var line = JSONWriter.bytes(.object(request))
        line.append(0x0a)
        let replyLine = try self.exchange(line)
        guard let reply = try? JSONParser.parse(replyLine) else { throw .badReply("the daemon's reply is not JSON") }
        if let result = reply["result"] { return .success(result) }
        guard let error = reply["error"], let code = error["code"]?.integerValue else {
            throw .badReply("the daemon's reply has neither result nor error")
        }
        return .failure(RPCError(code: Int(code), message: error["message"]?.stringValue ?? "", data: error["data"]))
    }

    /// Writes `line` (which must end in `\n`) on a new connection and reads one reply line.
    public func exchange(_ line: [UInt8]) throws(BrokerClientError) -> [UInt8] {
        let connection = try BrokerConnection(socketPath: self.socketPath, timeoutSeconds: self.timeoutSeconds)
        try connection.send(line)
        return try connection.readLine()
    }
}

public enum BrokerClientError: Error, Sendable, CustomStringConvertible {
    case notRunning(socket: String)
    case io(String)
    case badReply(String)
    /// The daemon closed the connection before a full reply line arrived.
    case closed

    public var description: String {
        switch self {
        case .notRunning(let socket): "no daemon is listening; is `sobot-broker serve` running? socket: \(socket)"
        case .io(let message): message
        case .badReply(let message): message
        case .closed: "the daemon closed the connection without a reply"
        }
    }
}
