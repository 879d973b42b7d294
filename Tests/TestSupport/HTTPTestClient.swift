import BrokerCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A deliberately small HTTP/1.1 client for tests of the proxy, over a Unix socket or loopback TCP:
/// it sends exactly the bytes a test builds (so malformed and hostile requests are possible) and
/// reads one response with a `content-length` body. Blocking, run off the cooperative pool.
public final class HTTPTestConnection: @unchecked Sendable {
    public enum Target: Sendable {
        case unix(String)
        case tcp(port: Int)
    }

    public struct Response: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]

        public var json: JSONValue? { try? JSONParser.parse(self.body) }

        public func header(_ name: String) -> String? {
            self.headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    private let descriptor: Int32
    private var buffered: [UInt8] = []

    public init(_ target: Target, timeout: Int = 20) throws {
        switch target {
        case .unix(let path):
            self.descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (index, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[index] = byte }
            }
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(self.descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            guard connected == 0 else {
                close(self.descriptor)
                throw Failure(description: "connect \(path): errno \(errno)")
            }
        case .tcp(let port):
            self.descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(self.descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                close(self.descriptor)
                throw Failure(description: "connect 127.0.0.1:\(port): errno \(errno)")
            }
        }
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(self.descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(self.descriptor) }

    public func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(self.descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw Failure(description: "send: errno \(errno)") }
            sent += count
        }
    }

    /// A request with `content-length` set for `body` (unless `headers` set it).
    public static func request(_ method: String, _ target: String, headers: [(String, String)] = [], body: [UInt8] = []) -> [UInt8] {
        var text = "\(method) \(target) HTTP/1.1\r\nhost: broker\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if !headers.contains(where: { $0.0.lowercased() == "content-length" }) { text += "content-length: \(body.count)\r\n" }
        text += "\r\n"
        return Array(text.utf8) + body
    }

    /// Reads one response; nil when the server closed the connection first.
    public func readResponse() throws -> Response? {
        guard let headEnd = try self.fill(until: { Self.find([13, 10, 13, 10], in: $0) }) else { return nil }
        let head = String(decoding: self.buffered[..<headEnd], as: UTF8.self)
        self.buffered.removeFirst(headEnd + 4)
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw Failure(description: "bad status line") }
        let headers = lines.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        let length = headers.first { $0.0.lowercased() == "content-length" }.flatMap { Int($0.1) } ?? 0
        guard try self.fill(until: { $0.count >= length ? length : nil }) != nil else { throw Failure(description: "closed mid-body") }
        let body = Array(self.buffered.prefix(length))
        self.buffered.removeFirst(length)
        return Response(status: status, headers: headers, body: body)
    }

    /// One request and its response, off the cooperative pool. A server may answer and close before
    /// the whole request is sent (a refused body): its answer is still read.
    public func exchange(_ bytes: [UInt8]) async throws -> Response? {
        try await onThread {
            var sendFailure: (any Error)?
            do {
                try self.send(bytes)
            } catch {
                sendFailure = error
            }
            if let response = try? self.readResponse() { return response }
            if let sendFailure { throw sendFailure }
            return nil
        }
    }

    /// A one-off request on a fresh connection.
    public static func exchange(_ target: Target, _ bytes: [UInt8]) async throws -> Response? {
        let connection = try HTTPTestConnection(target)
        return try await connection.exchange(bytes)
    }

    private func fill(until found: ([UInt8]) -> Int?) throws -> Int? {
        while true {
            if let index = found(self.buffered) { return index }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { recv(self.descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 { return nil }
            guard count > 0 else { throw Failure(description: "recv: errno \(errno)") }
            self.buffered.append(contentsOf: chunk[..<count])
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start..<start + needle.count].elementsEqual(needle) {
            return start
        }
        return nil
    }
}

/// A loopback TCP port that was free a moment ago.
public func freeLoopbackPort() throws -> Int {
    try PostgresServer.freeLoopbackPort()
}
