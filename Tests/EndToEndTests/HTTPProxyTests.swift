import BrokerCore
import Foundation
import TestSupport
import Testing

/// `serve --http-proxy` against the real daemon and the simulator over HTTP: forwarding, the token
/// set by the broker, the broker's own endpoints, refusals mapped to statuses, bounds, and callers.
@Suite(.heavy) struct HTTPProxyTests {
    struct Proxy {
        let daemon: RunningDaemon
        let path: String

        var target: HTTPTestConnection.Target { .unix(self.path) }

        static func start(tenants: Int = 2, extra: [String] = []) async throws -> Proxy {
            let daemon = try await RunningDaemon(tenants: tenants, start: false)
            let path = daemon.directory.file("proxy.sock")
            try await daemon.start(extraArguments: ["--http-proxy", path] + extra)
            return Proxy(daemon: daemon, path: path)
        }

        func send(_ method: String, _ uri: String, headers: [(String, String)] = [], body: [UInt8] = []) async throws -> HTTPTestConnection.Response {
            let response = try await HTTPTestConnection.exchange(self.target, HTTPTestConnection.request(method, uri, headers: headers, body: body))
            return try #require(response, "the proxy closed the connection without answering")
        }
    }

    @Test func forwardsMethodPathQueryBodyAndLanguageAndReplacesTheClientsToken() async throws {
        let proxy = try await Proxy.start()
        var mode = stat()
        #expect(lstat(proxy.path, &mode) == 0 && mode.st_mode & 0o777 == 0o600, "the proxy's socket is private to the broker's user")
        let body = Array(#"{"ticket_id":"T-1"}"#.utf8)
        let response = try await proxy.send(
            "POST", "/api/ws/5/ticket/query?page=2&q=a%20b",
            headers: [("X-Sobot-Tenant", "t0"), ("token", "clients-own-token"), ("language", "zh"), ("content-type", "application/json")],
            body: body
        )
        #expect(response.status == 200)
        let echo = try #require(response.json?["item"])
        #expect(echo["method"] == "POST" && echo["path"] == "/api/ws/5/ticket/query" && echo["query"] == "page=2&q=a%20b")
        #expect(echo["body"] == ["ticket_id": "T-1"] && echo["language"] == "zh" && echo["content_type"] == "application/json")
        #expect(echo["token_headers"] == 1, "the client's token was replaced, not added to")

        let get = try await proxy.send("GET", "/api/ws/5/agent/list", headers: [("X-Sobot-Tenant", "t1")])
        #expect(get.status == 200 && get.json?["item"]?["method"] == "GET")
        await proxy.daemon.shutdown()
    }

    @Test func keepAliveServesSeveralRequestsOnOneConnection() async throws {
        let proxy = try await Proxy.start()
        let connection = try HTTPTestConnection(proxy.target)
        for index in 0..<5 {
            let response = try await connection.exchange(HTTPTestConnection.request("GET", "/api/ws/5/n\(index)", headers: [("X-Sobot-Tenant", "t0")]))
            #expect(response?.status == 200 && response?.json?["item"]?["path"] == .string("/api/ws/5/n\(index)"))
        }
        await proxy.daemon.shutdown()
    }

    @Test func a900002MidCallRecoversWithOneRefresh() async throws {
        let proxy = try await Proxy.start(tenants: 1)
        _ = try await proxy.daemon.call("token.get", ["tenant": "t0"]).get()
        proxy.daemon.simulator.issueTokenElsewhere(appid: "app0")
        let before = proxy.daemon.simulator.tokenRequestCount
        let response = try await proxy.send("POST", "/api/ws/5/ticket/query", headers: [("X-Sobot-Tenant", "t0")])
        #expect(response.status == 200 && response.json?["ret_code"] == "000000")
        #expect(proxy.daemon.simulator.tokenRequestCount == before + 1)
        await proxy.daemon.shutdown()
    }

    @Test func theBrokersOwnEndpoints() async throws {
        let proxy = try await Proxy.start()
        let health = try await proxy.send("GET", "/_broker/health")
        #expect(health.status == 200 && health.json?["status"] == "ok" && health.json?["tenants"] == 2)
        let token = try await proxy.send("GET", "/_broker/token?tenant=t1")
        #expect(token.status == 200 && token.json?["tenant"] == "t1" && token.json?["token"]?.stringValue?.isEmpty == false)
        let unknown = try await proxy.send("GET", "/_broker/token?tenant=nobody")
        #expect(unknown.status == 404 && unknown.json?["error"]?["code"] == -32001)
        await proxy.daemon.shutdown()
    }

    @Test func refusalsAreJSONWithTheContractsStatuses() async throws {
        let proxy = try await Proxy.start()
        let before = proxy.daemon.simulator.businessRequestCount
        let missing = try await proxy.send("POST", "/api/ws/5/x")
        #expect(missing.status == 400 && missing.json?["error"]?["code"] == -32600)
        let unknown = try await proxy.send("POST", "/api/ws/5/x", headers: [("X-Sobot-Tenant", "nobody")])
        #expect(unknown.status == 404 && unknown.json?["error"]?["code"] == -32001)
        for path in ["/api/get_token?appid=1", "/api/get%5Ftoken", "/API/GET_TOKEN", "/api/../api/get_token", "/%2e%2e/etc", "//evil.example/x", "/api/%2F%2Fevil"] {
            let refused = try await proxy.send("GET", path, headers: [("X-Sobot-Tenant", "t0")])
            #expect(refused.status == 400 && refused.json?["error"]?["code"] == -32602, "\(path)")
        }
        let method = try await proxy.send("PATCH", "/api/ws/5/x", headers: [("X-Sobot-Tenant", "t0")])
        #expect(method.status == 400)
        #expect(proxy.daemon.simulator.businessRequestCount == before, "nothing refused reached the upstream")
        await proxy.daemon.shutdown()
    }

    @Test func oversizedBodiesAndHeadersAreRefused() async throws {
        let proxy = try await Proxy.start()
        let declared = try await proxy.send("POST", "/api/ws/5/x", headers: [("X-Sobot-Tenant", "t0"), ("content-length", "\(9 << 20)")])
        #expect(declared.status == 413)
        let big = [UInt8](repeating: UInt8(ascii: "a"), count: (8 << 20) + 10)
        let sent = try await proxy.send("POST", "/api/ws/5/x", headers: [("X-Sobot-Tenant", "t0")], body: big)
        #expect(sent.status == 413)
        let headers = (0..<40).map { ("x-filler-\($0)", String(repeating: "h", count: 1000)) }
        let response = try await HTTPTestConnection.exchange(proxy.target, HTTPTestConnection.request("GET", "/api/ws/5/x", headers: [("X-Sobot-Tenant", "t0")] + headers))
        #expect(response == nil || response?.status == 431, "headers past the bound are refused")
        #expect(proxy.daemon.simulator.businessRequestCount == 0)
        let after = try await proxy.send("GET", "/api/ws/5/x", headers: [("X-Sobot-Tenant", "t0")])
        #expect(after.status == 200, "the proxy keeps serving")
        await proxy.daemon.shutdown()
    }

    @Test func aSlowlorisClientDoesNotBlockOthers() async throws {
        let proxy = try await Proxy.start()
        let slow = try (0..<20).map { _ in try HTTPTestConnection(proxy.target) }
        for connection in slow { try connection.send(Array("POST /api/ws/5/x HTTP/1.1\r\nX-Sobot-".utf8)) }
        for index in 0..<5 {
            let response = try await proxy.send("GET", "/api/ws/5/y\(index)", headers: [("X-Sobot-Tenant", "t0")])
            #expect(response.status == 200)
        }
        for connection in slow { try connection.send(Array("Tenant".utf8)) }
        let again = try await proxy.send("GET", "/api/ws/5/z", headers: [("X-Sobot-Tenant", "t0")])
        #expect(again.status == 200)
        await proxy.daemon.shutdown()
    }

    @Test func tcpNeedsAClientKeyAndOnlyLoopbackMayBeListenedOn() async throws {
        let refused = try await runBroker(["serve", "--http-proxy", "0.0.0.0:8080"], environment: [:])
        #expect(refused.status == 64 && refused.stderr.contains("loopback"))
        let daemon = try await RunningDaemon(tenants: 1, start: false)
        let port = try freeLoopbackPort()
        try await daemon.start(extraArguments: ["--http-proxy", "127.0.0.1:\(port)"])
        let anonymous = try await HTTPTestConnection.exchange(.tcp(port: port), HTTPTestConnection.request("GET", "/api/ws/5/x", headers: [("X-Sobot-Tenant", "t0")]))
        #expect(anonymous?.status == 401)
        let wrong = try await HTTPTestConnection.exchange(
            .tcp(port: port),
            HTTPTestConnection.request("GET", "/api/ws/5/x", headers: [("X-Sobot-Tenant", "t0"), ("Authorization", "Bearer sbk_nope_nope")])
        )
        #expect(wrong?.status == 401)
        let health = try await HTTPTestConnection.exchange(.tcp(port: port), HTTPTestConnection.request("GET", "/_broker/health"))
        #expect(health?.status == 200, "probes need no key")
        await daemon.shutdown()
    }
}
