#if canImport(Glibc)
import Glibc
#endif

/// Who is on the other end of a connection, from the kernel (`SO_PEERCRED`), never from the client.
public struct PeerCredentials: Sendable, Hashable, CustomStringConvertible {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    public var description: String { "pid=\(self.pid) uid=\(self.uid) gid=\(self.gid)" }

    /// Layout of Linux's `struct ucred`, which Glibc's module only exposes under `_GNU_SOURCE`.
    private struct RawCredentials {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
    }

    /// Reads the peer credentials of a connected Unix-socket descriptor (either end).
    static func read(descriptor: Int32) -> PeerCredentials? {
        var raw = RawCredentials()
        var length = socklen_t(MemoryLayout<RawCredentials>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_PEERCRED, &raw, &length) == 0 else { return nil }
        return PeerCredentials(pid: raw.pid, uid: raw.uid, gid: raw.gid)
    }
}
