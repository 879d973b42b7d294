#if canImport(Glibc)
import Glibc
#endif

/// Who this process is, for its heartbeat row and lease owner id.
public enum ProcessIdentity {
    public static var hostName: String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "unknown" }
        return String(cString: buffer)
    }

    public static var pid: Int32 { getpid() }

    /// A broker id unique across hosts and restarts: host, pid and 48 random bits.
    public static func newMemberID() -> String {
        let random = UInt64.random(in: 0..<(1 << 48))
        return "\(Self.hostName.prefix(64))-\(Self.pid)-\(String(random, radix: 16))"
    }
}
