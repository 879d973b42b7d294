#if canImport(Glibc)
import Glibc
#endif

/// The `sockaddr_un` of a filesystem path, for `bind` (the daemon) and `connect` (the client) alike.
enum UnixSocketAddress {
    /// The longest path the address holds, its terminating NUL aside.
    static let maximumPathLength = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    /// Calls `body` with the address of `path`, which must be at most `maximumPathLength` bytes.
    static func with<Result>(path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        precondition(path.utf8.count <= Self.maximumPathLength, "socket path too long; check maximumPathLength first")
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in
            bytes.copyBytes(from: path.utf8)
            bytes[path.utf8.count] = 0
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }
}
