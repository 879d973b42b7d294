import BrokerCore
import Foundation
import TestSupport
import Testing

/// Prometheus metrics through `broker.metrics` and `serve --metrics-listen`.
@Suite struct MetricsTests {
    @Test func countsRequestsUpstreamCallsTokensAndConnections() async throws {
        let port = try Self.freePort()
        let daemon = try await RunningDaemon(tenants: 2, start: false)
        try await daemon.start(extraArguments: ["--metrics-listen", "127.0.0.1:\(port)"])
        let connection = try daemon.connect()
        for _ in 0..<5 {
            _ = try await connection.reply(#"{"jsonrpc":"2.0","id":1,"method":"token.get","params":{"tenant":"t0"}}"#)
        }
        _ = try await connection.reply(#"{"jsonrpc":"2.0","id":2,"method":"token.get","params":{"tenant":"t1"}}"#)
        _ = try await connection.reply(#"{"jsonrpc":"2.0","id":3,"method":"made.up.\#(UUID().uuidString)"}"#)
        let text = try #require(try await daemon.call("broker.metrics").get().stringValue)
        #expect(Self.value(text, #"sobot_broker_rpc_requests_total{method="token.get",code="ok"}"#).map { $0 >= 4 } == true, "\(text)")
        #expect(Self.value(text, #"sobot_broker_rpc_requests_total{method="unknown",code="-32601"}"#) == 1)
        #expect(!text.contains("made.up"), "unknown method names never become label values")
        #expect(Self.value(text, #"sobot_broker_tokens{state="valid"}"#) == 2)
        #expect(text.contains(#"sobot_broker_upstream_call_seconds_count{region="sg",endpoint="/api/get_token",outcome="ok"}"#))
        #expect(text.contains("sobot_broker_token_fetches_total"))
        #expect(Self.value(text, "sobot_broker_connections").map { $0 >= 1 } == true)
        let scraped = try await onThread { try Self.httpGet(port: port, path: "/metrics") }
        #expect(scraped.hasPrefix("HTTP/1.1 200"), "\(scraped.prefix(200))")
        #expect(scraped.contains("sobot_broker_rpc_requests_total"))
        for secret in [RunningDaemon.appKey(0), "token\":"] { #expect(!text.contains(secret)) }
        await daemon.shutdown()
    }

    /// The value of the sample whose name and labels are exactly `series`.
    static func value(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw DaemonTestError("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func httpGet(port: Int, path: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else { throw DaemonTestError("cannot connect to the metrics port") }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var response: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            response.append(contentsOf: chunk[0..<count])
        }
        return String(decoding: response, as: UTF8.self)
    }
}
