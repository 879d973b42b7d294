#if canImport(Glibc)
import Glibc
#endif

/// Who is on the other end of a connection, from the kernel (`SO_PEERCRED`, `SO_PEERGROUPS`), never
/// from the client.
public struct PeerCredentials: Sendable, Hashable, CustomStringConvertible {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
    /// The peer's supplementary groups when it connected (Linux 4.13+; empty where unknown, which
    /// only ever grants less).
    public var supplementaryGroups: [UInt32]

    public init(pid: Int32, uid: UInt32, gid: UInt32, supplementaryGroups: [UInt32] = []) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
        self.supplementaryGroups = supplementaryGroups
    }

    /// Every group a group rule can match: the primary one, then the supplementary ones, as `id` shows them.
    public var groups: [UInt32] { [self.gid] + self.supplementaryGroups }

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
        return PeerCredentials(pid: raw.pid, uid: raw.uid, gid: raw.gid, supplementaryGroups: Self.supplementaryGroups(descriptor: descriptor))
    }

    /// Linux's `SO_PEERGROUPS`, which Glibc's module does not name.
    static let peerGroupsOption: Int32 = 59

    /// `SO_PEERGROUPS` of a connected Unix-socket descriptor: the groups the peer had when it
    /// connected. Asks again with the size the kernel reports when the first buffer is too small.
    static func supplementaryGroups(descriptor: Int32) -> [UInt32] {
        var groups = [UInt32](repeating: 0, count: 64)
        for _ in 0..<2 {
            var length = socklen_t(groups.count * MemoryLayout<UInt32>.size)
            let result = groups.withUnsafeMutableBytes { getsockopt(descriptor, SOL_SOCKET, Self.peerGroupsOption, $0.baseAddress, &length) }
            if result == 0 { return Array(groups.prefix(Int(length) / MemoryLayout<UInt32>.size)) }
            guard errno == ERANGE, Int(length) > groups.count * MemoryLayout<UInt32>.size, length <= 65536 * 4 else { return [] }
            groups = [UInt32](repeating: 0, count: Int(length) / MemoryLayout<UInt32>.size)
        }
        return []
    }
}
