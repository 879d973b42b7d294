#if canImport(Glibc)
import Glibc
#endif

/// One blocking connection to the daemon's socket: write lines, read reply lines.
/// Used by the command-line client, and by tests that need many long-lived connections.
public final class BrokerConnection {
    private let descriptor: Int32
    private let socketPath: String
    private var buffered: [UInt8] = []

    public init(socketPath: String, timeoutSeconds: Int = 120) throws(BrokerClientError) {
        self.socketPath = socketPath
        guard socketPath.utf8.count <= UnixSocketAddress.maximumPathLength else {
            throw .io("socket path is too long: \(socketPath)")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .io("cannot create a socket: \(String(cString: strerror(errno)))") }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let status = UnixSocketAddress.with(path: socketPath) { Glibc.connect(fd, $0, $1) }
        guard status == 0 else {
            let code = errno
            close(fd)
            if code == ENOENT || code == ECONNREFUSED { throw .notRunning(socket: socketPath) }
            throw .io("cannot connect to \(socketPath): \(String(cString: strerror(code)))")
        }
        self.descriptor = fd
    }

    deinit { close(self.descriptor) }

    /// The socket, for tools that take over I/O themselves (the load generator duplicates it).
    public var descriptorForLoad: Int32 { self.descriptor }

    /// The pid of the process serving this socket, from `SO_PEERCRED`.
    public var peerProcessID: Int32? {
        PeerCredentials.read(descriptor: self.descriptor)?.pid
    }

    public func send(_ bytes: [UInt8]) throws(BrokerClientError) {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(self.descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw .io("cannot send to \(self.socketPath): \(String(cString: strerror(errno)))") }
            sent += count
        }
    }

    public func send(line text: String) throws(BrokerClientError) {
        try self.send(Array((text + "\n").utf8))
    }

    /// The next reply line, without its `\n`.
    public func readLine() throws(BrokerClientError) -> [UInt8] {
        while true {
            if let newline = self.buffered.firstIndex(of: 0x0a) {
                let line = Array(self.buffered[..<newline])
                self.buffered.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            let count = chunk.withUnsafeMutableBytes { recv(self.descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else {
                throw count == 0 ? .closed : .io("no reply from \(self.socketPath) (timed out)")
            }
            self.buffered.append(contentsOf: chunk[0..<count])
        }
    }
}
