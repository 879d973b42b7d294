import Foundation

/// The manager's end of systemd's notify protocol: a datagram socket the daemon finds through
/// `NOTIFY_SOCKET`, whose messages a test reads in order.
public final class NotifyListener: @unchecked Sendable {
    public let path: String
    private let descriptor: Int32

    /// Binds a socket at `path`, writable by every user (a daemon started as another user sends to it).
    public init(path: String) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw DaemonTestError("socket: errno \(errno)") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
        guard bound else {
            close(fd)
            throw DaemonTestError("bind \(path): errno \(errno)")
        }
        chmod(path, 0o666)
        self.path = path
        self.descriptor = fd
    }

    deinit { close(self.descriptor) }

    /// The next message, or nil when none comes within `timeout` seconds.
    public func next(timeout: Double) async -> String? {
        let fd = self.descriptor
        return try? await onThread { () -> String? in
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(timeout * 1000)) == 1 else { return nil }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
        }
    }

    /// Messages until one holds `line` as one of its lines; false if none does within `timeout` seconds.
    public func waitFor(_ line: String, timeout: Double) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * 1000))
        while ContinuousClock.now < deadline {
            let left = Double((deadline - ContinuousClock.now).components.seconds) + 0.1
            guard let message = await self.next(timeout: left) else { return false }
            if message.split(separator: "\n").contains(Substring(line)) { return true }
        }
        return false
    }
}
