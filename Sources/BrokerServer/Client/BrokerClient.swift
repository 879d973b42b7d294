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

    /// Writes `line` (which must end in `\n`) and reads one reply line.
    public func exchange(_ line: [UInt8]) throws(BrokerClientError) -> [UInt8] {
        let fd = try self.connect()
        defer { close(fd) }
        var sent = 0
        while sent < line.count {
            let count = line[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw .io("cannot send to \(self.socketPath): \(String(cString: strerror(errno)))") }
            sent += count
        }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else {
                throw count == 0 ? .badReply("the daemon closed the connection without a reply") : .io("no reply from \(self.socketPath) (timed out)")
            }
            if let newline = chunk[0..<count].firstIndex(of: 0x0a) {
                reply.append(contentsOf: chunk[0..<newline])
                return reply
            }
            reply.append(contentsOf: chunk[0..<count])
        }
    }

    private func connect() throws(BrokerClientError) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(self.socketPath.utf8)
        guard pathBytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw .io("socket path is too long: \(self.socketPath)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .io("cannot create a socket: \(String(cString: strerror(errno)))") }
        var timeout = timeval(tv_sec: self.timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard status == 0 else {
            let code = errno
            close(fd)
            if code == ENOENT || code == ECONNREFUSED { throw .notRunning(socket: self.socketPath) }
            throw .io("cannot connect to \(self.socketPath): \(String(cString: strerror(code)))")
        }
        return fd
    }
}

public enum BrokerClientError: Error, Sendable, CustomStringConvertible {
    case notRunning(socket: String)
    case io(String)
    case badReply(String)

    public var description: String {
        switch self {
        case .notRunning(let socket): "no daemon is listening; is `sobot-broker serve` running? socket: \(socket)"
        case .io(let message): message
        case .badReply(let message): message
        }
    }
}
