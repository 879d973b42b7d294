#if canImport(Glibc)
import Glibc
#endif

/// One blocking connection to the broker's Unix socket: a request line out, a reply line in.
final class BrokerLineConnection {
    /// Replies longer than this are refused rather than buffered.
    static let maximumReplyBytes = 64 << 20

    private let descriptor: Int32
    private var buffered: [UInt8] = []

    init(socketPath: String, timeoutSeconds: Int) throws(BrokerCallError) {
        var address = sockaddr_un()
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard socketPath.utf8.count < capacity else { throw .unavailable("the socket path is longer than \(capacity - 1) bytes") }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in socketPath.utf8.enumerated() { raw[index] = byte }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .unavailable("cannot create a socket (errno \(errno))") }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard status == 0 else {
            let code = errno
            close(fd)
            if code == ENOENT || code == ECONNREFUSED {
                throw .unavailable("no daemon is listening; is `sobot-broker serve` running? socket: \(socketPath)")
            }
            throw .unavailable("cannot connect to \(socketPath) (\(String(cString: strerror(code))))")
        }
        self.descriptor = fd
    }

    deinit { close(self.descriptor) }

    func send(_ bytes: [UInt8]) throws(BrokerCallError) {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(self.descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw .unavailable("cannot send (\(String(cString: strerror(errno))))") }
            sent += count
        }
    }

    /// The next reply line, without its `\n`.
    func readLine() throws(BrokerCallError) -> [UInt8] {
        var searched = 0
        while true {
            if let newline = self.buffered[searched...].firstIndex(of: 0x0a) {
                let line = Array(self.buffered[..<newline])
                self.buffered.removeSubrange(...newline)
                return line
            }
            searched = self.buffered.count
            guard self.buffered.count <= Self.maximumReplyBytes else { throw .badReply("a reply longer than \(Self.maximumReplyBytes >> 20) MiB") }
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            let count = chunk.withUnsafeMutableBytes { recv(self.descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else {
                throw count == 0 ? .unavailable("the daemon closed the connection without a reply") : .unavailable("no reply (timed out)")
            }
            self.buffered.append(contentsOf: chunk[0..<count])
        }
    }
}
