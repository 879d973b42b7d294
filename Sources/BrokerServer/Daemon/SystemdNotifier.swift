#if canImport(Glibc)
import Glibc
#endif
import BrokerCore

/// systemd's readiness protocol (`Type=notify`), without libsystemd: a datagram of `KEY=VALUE` lines to
/// the Unix socket named by `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace). Without that
/// variable every call does nothing, so the daemon behaves the same outside systemd.
public struct SystemdNotifier: Sendable {
    private let address: [UInt8]?

    public init(environment: [String: String]) {
        guard let name = environment["NOTIFY_SOCKET"], name.hasPrefix("/") || name.hasPrefix("@"), name.utf8.count < 108 else {
            self.address = nil
            return
        }
        var bytes = Array(name.utf8)
        if bytes[0] == UInt8(ascii: "@") { bytes[0] = 0 }
        self.address = bytes
    }

    /// Serving: the socket listens and every stored token is loaded.
    public func ready() { self.send("READY=1\nSTATUS=serving") }

    /// A reload began (`ExecReload`, SIGHUP); `ready()` ends it.
    public func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        self.send("RELOADING=1\nMONOTONIC_USEC=\(Int(now.tv_sec) * 1_000_000 + Int(now.tv_nsec) / 1000)")
    }

    public func stopping() { self.send("STOPPING=1\nSTATUS=draining connections") }

    /// Best effort, as sd_notify is: a manager that does not listen must not stop the daemon.
    private func send(_ message: String) {
        guard let address else { return }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var destination = sockaddr_un()
        destination.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &destination.sun_path) { path in
            path.copyBytes(from: address)
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + address.count)
        let payload = Array(message.utf8)
        _ = withUnsafePointer(to: &destination) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                payload.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), socketAddress, length) }
            }
        }
    }
}
