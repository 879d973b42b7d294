#if canImport(Glibc)
import Glibc
#endif
import BrokerCore

/// An exclusive `flock` on `<home>/serve.lock`, held for the daemon's lifetime, so a second `serve` on
/// the same home refuses instead of stealing the socket. The kernel drops it if the daemon dies.
public final class ServeLock: Sendable {
    private let descriptor: Int32
    public let path: String

    public static func acquire(at path: String) throws -> ServeLock {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemCallError("open \(path)") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(fd)
            if code == EWOULDBLOCK { throw ServeLockError.held(path: path) }
            throw SystemCallError("flock \(path)", errno: code)
        }
        ftruncate(fd, 0)
        let pid = Array("\(getpid())\n".utf8)
        _ = pid.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        return ServeLock(descriptor: fd, path: path)
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
