/// Where `serve --http-proxy ADDR` listens: a Unix socket at an absolute path, or a loopback TCP
/// port. Anything else (another interface, a wildcard, a host name) is refused: the proxy hands out
/// the use of tokens, and off the host only a client key would stand between it and the network.
public enum ProxyListenAddress: Sendable, Equatable, CustomStringConvertible {
    case unix(path: String)
    case tcp(host: String, port: Int)

    public struct Refusal: Error, CustomStringConvertible {
        public let description: String
    }

    public init(parsing text: String) throws(Refusal) {
        if text.hasPrefix("/") {
            self = .unix(path: text)
            return
        }
        let host: String
        let portText: Substring
        if text.hasPrefix("[::1]:") {
            host = "::1"
            portText = text.dropFirst("[::1]:".count)
        } else if let colon = text.lastIndex(of: ":"), ["127.0.0.1", "localhost"].contains(text[..<colon]) {
            host = "127.0.0.1"
            portText = text[text.index(after: colon)...]
        } else {
            throw Refusal(description: "--http-proxy must be an absolute socket path or 127.0.0.1:PORT, [::1]:PORT or localhost:PORT (loopback only)")
        }
        guard portText.count <= 5, portText.allSatisfy(\.isASCII), let port = Int(portText), (1...65535).contains(port) else {
            throw Refusal(description: "--http-proxy: the port must be 1-65535")
        }
        self = .tcp(host: host, port: port)
    }

    public var description: String {
        switch self {
        case .unix(let path): path
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        }
    }
}
