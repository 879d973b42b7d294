#if canImport(Glibc)
import Glibc
#endif
import BrokerCore

/// Something other than a socket occupies the socket path.
public struct SocketPathError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(self.path) \(self.reason)" }
}

/// The listening Unix socket, made to appear at its path already at its final mode: it is bound
/// inside a private (0700) staging directory, chmodded (and chowned to a group), then renamed into place.
enum UnixListener {
    /// Returns the listening, non-blocking descriptor.
    static func bind(path: String, mode: mode_t, group: gid_t?, backlog: Int32 = 512) throws -> Int32 {
        // Only a stale socket may be replaced; anything else at the path is the user's file.
        var existing = stat()
        if lstat(path, &existing) == 0, existing.st_mode & S_IFMT != S_IFSOCK {
            throw SocketPathError(path: path, reason: "exists and is not a socket; refusing to replace it")
        }
        let staging = FileIO.directoryName(of: path) + "/.sobot-broker-\(getpid())"
        rmdir(staging)
        guard mkdir(staging, 0o700) == 0 else { throw SystemCallError("mkdir \(staging)") }
        defer { rmdir(staging) }
        let stagedPath = staging + "/s"
        let longest = UnixSocketAddress.maximumPathLength
        guard path.utf8.count <= longest, stagedPath.utf8.count <= longest else {
            throw SocketPathError(path: path, reason: "is too long for a Unix socket (at most \(longest) bytes, with room for staging)")
        }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw SystemCallError("socket") }
        do {
            let bound = UnixSocketAddress.with(path: stagedPath) { Glibc.bind(descriptor, $0, $1) }
            guard bound == 0 else { throw SystemCallError("bind \(stagedPath)") }
            if let group, chown(stagedPath, uid_t.max, group) != 0 { throw SystemCallError("chown \(stagedPath) to group \(group)") }
            guard chmod(stagedPath, group == nil ? mode : 0o660) == 0 else { throw SystemCallError("chmod \(stagedPath)") }
            guard listen(descriptor, backlog) == 0 else { throw SystemCallError("listen \(stagedPath)") }
            guard rename(stagedPath, path) == 0 else { throw SystemCallError("rename socket into \(path)") }
        } catch {
            close(descriptor)
            unlink(stagedPath)
            throw error
        }
        return descriptor
    }
}
