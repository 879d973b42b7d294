#if canImport(Glibc)
import Glibc
#endif
import BrokerCore

/// An exclusive `flock` on `<home>/serve.lock`, held for the daemon's lifetime, so a second `serve` on
/// the same home refuses instead of stealing the socket. The kernel drops it if the daemon dies.
///
/// The file holds the daemon's pid and socket path, so client commands find a daemon started with
/// `--socket` without being told (`runningDaemonSocket`).
public final class ServeLock: Sendable {
    private let descriptor: Int32
    public let path: String

    public static func acquire(at path: String, socket: String? = nil) throws -> ServeLock {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemCallError("open \(path)") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(fd)
            if code == EWOULDBLOCK { throw ServeLockError.held(path: path) }
            throw SystemCallError("flock \(path)", errno: code)
        }
        ftruncate(fd, 0)
        let record = Array("\(getpid())\n\(socket.map(Self.absolute) ?? "")\n".utf8)
        _ = record.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        return ServeLock(descriptor: fd, path: path)
    }

    /// The socket path of the daemon holding the lock at `path`, or nil when none holds it (a path
    /// left behind by a daemon that died is not trusted: its lock is free).
    public static func runningDaemonSocket(at path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard flock(fd, LOCK_SH | LOCK_NB) != 0, errno == EWOULDBLOCK else { return nil }
        var bytes = [UInt8](repeating: 0, count: 4096 + 64)
        let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        let lines = String(decoding: bytes[..<count], as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard lines.count >= 2, lines[1].hasPrefix("/") else { return nil }
        return String(lines[1])
    }

    /// A relative `--socket` as clients in other directories must name it.
    private static func absolute(_ path: String) -> String {
        guard !path.hasPrefix("/"), let directory = getcwd(nil, 0) else { return path }
        defer { free(directory) }
        return String(cString: directory) + "/" + path
    }

    private init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    deinit { close(self.descriptor) }
}

public enum ServeLockError: Error, Sendable, CustomStringConvertible {
    case held(path: String)

    public var description: String {
        switch self {
        case .held(let path): "another `sobot-broker serve` is already running on this home (lock \(path) is held)"
        }
    }
}
