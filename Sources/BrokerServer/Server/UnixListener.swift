#if canImport(Glibc)
import Glibc
#endif
import BrokerCore

/// The socket path is taken, or cannot be used.
public struct SocketPathError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(self.path) \(self.reason)" }
}

/// The listening Unix socket, made to appear at its path already at its final mode: it is bound
/// inside a private (0700) staging directory with an unpredictable name (`mkdtemp`), chmodded (and
/// chowned to a group), then renamed into place.
///
/// A socket already at the path is replaced only when it is stale: `connect` to it is refused
/// (nobody listens). A live socket, or one that cannot be checked, belongs to someone else.
struct UnixListener {
    /// The listening, non-blocking descriptor.
    let descriptor: Int32
    let path: String
    /// Device and inode of the socket file this process created, so it removes only its own.
    private let device: UInt64
    private let inode: UInt64

    static func bind(path: String, mode: mode_t, group: gid_t?, backlog: Int32 = 512) throws -> UnixListener {
        let longest = UnixSocketAddress.maximumPathLength
        guard path.utf8.count <= longest else {
            throw SocketPathError(path: path, reason: "is too long for a Unix socket (at most \(longest) bytes)")
        }
        _ = try Self.refuseIfTaken(path)
        var template = Array((FileIO.directoryName(of: path) + "/.sobot-broker-XXXXXX").utf8CString)
        guard let created = mkdtemp(&template) else { throw SystemCallError("mkdtemp beside \(path)") }
        let staging = String(cString: created)
        defer { rmdir(staging) }
        let stagedPath = staging + "/s"
        guard stagedPath.utf8.count <= longest else {
            throw SocketPathError(path: path, reason: "is too long for a Unix socket (at most \(longest) bytes, with room for staging)")
        }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw SystemCallError("socket") }
        do {
            let bound = UnixSocketAddress.with(path: stagedPath) { Glibc.bind(descriptor, $0, $1) }
            guard bound == 0 else { throw SystemCallError("bind \(stagedPath)") }
            if let group, chown(stagedPath, uid_t.max, group) != 0 { throw SystemCallError("chown \(stagedPath) to group \(group)") }
            guard chmod(stagedPath, group == nil ? mode : 0o660) == 0 else { throw SystemCallError("chmod \(stagedPath)") }
            var identity = stat()
            guard lstat(stagedPath, &identity) == 0 else { throw SystemCallError("stat \(stagedPath)") }
            guard listen(descriptor, backlog) == 0 else { throw SystemCallError("listen \(stagedPath)") }
            // Checked again just before moving in: a daemon that started meanwhile keeps its socket.
            // An empty path is taken with link(), which fails rather than replace whatever appeared
            // since; only a stale socket is renamed over.
            if try Self.refuseIfTaken(path) {
                guard rename(stagedPath, path) == 0 else { throw SystemCallError("rename socket into \(path)") }
            } else {
                guard link(stagedPath, path) == 0 else { throw SystemCallError("link socket into \(path)") }
                unlink(stagedPath)
            }
            return UnixListener(descriptor: descriptor, path: path, device: UInt64(identity.st_dev), inode: UInt64(identity.st_ino))
        } catch {
            close(descriptor)
            unlink(stagedPath)
            throw error
        }
    }

    /// Removes the socket file if it is still the one this listener created (another process may
    /// have replaced it since). Between the check and the unlink there is no way to be atomic.
    func removeSocketFile() {
        var current = stat()
        guard lstat(self.path, &current) == 0, UInt64(current.st_dev) == self.device, UInt64(current.st_ino) == self.inode else { return }
        unlink(self.path)
    }

    /// Throws unless nothing is at `path` or a stale socket is; returns true for a stale socket.
    @discardableResult
    static func refuseIfTaken(_ path: String) throws -> Bool {
        var existing = stat()
        guard lstat(path, &existing) == 0 else { return false }
        guard existing.st_mode & S_IFMT == S_IFSOCK else {
            throw SocketPathError(path: path, reason: "exists and is not a socket; refusing to replace it")
        }
        // Non-blocking, so a live daemon whose backlog is full answers EAGAIN instead of stalling us.
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { throw SystemCallError("socket") }
        defer { close(probe) }
        let connected = UnixSocketAddress.with(path: path) { connect(probe, $0, $1) }
        let code = errno
        if connected == 0 {
            throw SocketPathError(path: path, reason: "is a live socket: another broker is serving it; refusing to take it over")
        }
        guard code == ECONNREFUSED else {
            throw SocketPathError(path: path, reason: "is a socket that could not be checked (\(String(cString: strerror(code)))); refusing to replace it")
        }
        return true
    }
}
