#if canImport(Glibc)
import Glibc
#endif

/// Where `serve --metrics-listen HOST:PORT` binds. Metrics are for a scraper on the same host, so
/// the host must be a loopback address (`127.0.0.0/8`, `::1`, `localhost`) unless the operator
/// says otherwise with `--metrics-listen-any`.
public struct MetricsListenAddress: Sendable, Equatable {
    public let host: String
    public let port: Int

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case notLoopback(String)

        public var description: String {
            switch self {
            case .malformed: "--metrics-listen must be HOST:PORT, e.g. 127.0.0.1:9464"
            case .notLoopback(let host):
                "--metrics-listen \(host) is not a loopback address; metrics are served to this host only unless --metrics-listen-any is given"
            }
        }
    }

    /// `HOST:PORT` (`[::1]:PORT` for IPv6), refused unless the host is loopback or `allowingAny`.
    public init(parsing text: String, allowingAny: Bool = false) throws(ParseError) {
        guard let colon = text.lastIndex(of: ":"), colon > text.startIndex,
            let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port)
        else { throw .malformed(text) }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]"), host.count > 2 { host = String(host.dropFirst().dropLast()) }
        guard allowingAny || Self.isLoopback(host) else { throw .notLoopback(host) }
        self.host = host
        self.port = port
    }

    /// `localhost`, an IPv4 address in 127.0.0.0/8, or `::1`.
    static func isLoopback(_ host: String) -> Bool {
        if host == "localhost" { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, host, &v6) == 1 else { return false }
        return withUnsafeBytes(of: &v6) { bytes in bytes.dropLast().allSatisfy { $0 == 0 } && bytes.last == 1 }
    }
}
