import BrokerCore
import Foundation
import TestSupport
import Testing

/// Prometheus metrics through `broker.metrics` and `serve --metrics-listen`.
@Suite(.heavy) struct MetricsTests {
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

    /// Hundreds of idle connections to the metrics port hold at most `--metrics-max-connections`
    /// descriptors; the socket keeps answering; the idle (and half-sent) ones are cut after
    /// `--metrics-timeout`, and a new scraper is then served.
    @Test func idleMetricsConnectionsAreCappedAndCut() async throws {
        let port = try Self.freePort()
        let daemon = try await RunningDaemon(tenants: 1, start: false)
        try await daemon.start(extraArguments: ["--metrics-listen", "127.0.0.1:\(port)", "--metrics-timeout", "2"])
        let pid = try #require(daemon.process?.pid)
        let before = try Self.openDescriptors(pid)
        var clients: [Int32] = []
        defer { for fd in clients { close(fd) } }
        for index in 0..<300 {
            let fd = try Self.connect(port: port)
            clients.append(fd)
            // A few send half a request and stop: slow requests are cut like idle connections.
            if index % 50 == 0 { _ = Array("GET /met".utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) } }
        }
        try await Task.sleep(for: .milliseconds(500))
        let held = try Self.openDescriptors(pid) - before
        // The 64 served, plus refused ones not yet closed and slack for the daemon's own files.
        #expect(held <= 64 + 32, "the daemon holds \(held) more descriptors for 300 idle connections")
        #expect(try await daemon.call("broker.health").get()["status"] != nil, "the socket still answers")

        let cut = await eventually(timeout: 30, interval: 0.2) { clients.allSatisfy(Self.isClosedByPeer) }
        #expect(cut, "every idle connection is closed by the daemon")
        let scraped = try await onThread { try Self.httpGet(port: port, path: "/metrics") }
        #expect(scraped.hasPrefix("HTTP/1.1 200"), "\(scraped.prefix(200))")
        #expect(try Self.openDescriptors(pid) <= before + 8)

        // A request head past the size limit is refused, and the connection closed.
        let oversized = try await onThread {
            try Self.httpGet(port: port, path: "/metrics", extraHeader: "X-Padding: " + String(repeating: "a", count: 32 << 10))
        }
        #expect(!oversized.hasPrefix("HTTP/1.1 200"), "\(oversized.prefix(200))")
        await daemon.shutdown()
    }

    /// Metrics are unauthenticated: an address other hosts can reach needs `--metrics-listen-any`.
    @Test func aNonLoopbackMetricsAddressNeedsTheExplicitFlag() async throws {
        let daemon = try await RunningDaemon(tenants: 1, start: false)
        let refused = try await runBroker(["serve", "--metrics-listen", "0.0.0.0:9464"], environment: daemon.environment)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("not a loopback address") && refused.stderr.contains("--metrics-listen-any"), "\(refused.stderr)")
        #expect(refused.stderr.split(separator: "\n").first?.contains("not a loopback address") == true, "one line says why: \(refused.stderr)")
        let port = try Self.freePort()
        try await daemon.start(extraArguments: ["--metrics-listen", "0.0.0.0:\(port)", "--metrics-listen-any"])
        let scraped = try await onThread { try Self.httpGet(port: port, path: "/metrics") }
        #expect(scraped.hasPrefix("HTTP/1.1 200"), "\(scraped.prefix(200))")
        await daemon.shutdown()
    }

    /// A kept-alive metrics connection, idle after its answer, does not hold up shutdown until its
    /// 10 s timeout.
    @Test func anIdleMetricsConnectionDoesNotHoldUpShutdown() async throws {
        let port = try Self.freePort()
        let daemon = try await RunningDaemon(tenants: 1, start: false)
        try await daemon.start(extraArguments: ["--metrics-listen", "127.0.0.1:\(port)"])
        let idle = try Self.connect(port: port)
        defer { close(idle) }
        _ = Array("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8).withUnsafeBytes { send(idle, $0.baseAddress, $0.count, 0) }
        var answer = [UInt8](repeating: 0, count: 64)
        #expect(recv(idle, &answer, answer.count, 0) > 0, "answered, and kept open")
        let stopping = ContinuousClock.now
        let exit = try #require(try await daemon.stop())
        #expect(exit.status == 0)
        #expect(ContinuousClock.now - stopping < .seconds(8), "stopped after \(ContinuousClock.now - stopping)")
        await daemon.shutdown()
    }

    static func openDescriptors(_ pid: Int32) throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count
    }

    /// Whether the daemon closed this connection (reading it gives end of file or a reset).
    static func isClosedByPeer(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, Int32(MSG_DONTWAIT))
        return count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
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

    static func connect(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        guard connected else {
            close(fd)
            throw DaemonTestError("cannot connect to the metrics port")
        }
        return fd
    }

    static func httpGet(port: Int, path: String, method: String = "GET", extraHeader: String? = nil) throws -> String {
        let fd = try Self.connect(port: port)
        defer { close(fd) }
        let extra = extraHeader.map { $0 + "\r\n" } ?? ""
        let request = Array("\(method) \(path) HTTP/1.1\r\nHost: localhost\r\n\(extra)Connection: close\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
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
