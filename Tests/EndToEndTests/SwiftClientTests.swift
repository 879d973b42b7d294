import BrokerCore
import SobotBrokerClient
import TestSupport
import Testing

/// `SobotBrokerClient` against the real daemon and the simulator.
@Suite(.heavy) struct SwiftClientTests {
    @Test func tokensRequestsAndTypedErrors() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        let client = SobotBrokerClient(socketPath: daemon.socket)
        let token = try await client.token(tenant: "t0")
        #expect(token.tenant == "t0" && token.region == "sg" && token.expiresIn > 0)
        #expect(!token.description.contains(token.value), "a token's description never shows it")
        #expect(try await client.invalidate(tenant: "t0", token: "stale").value == token.value, "a stale report changes nothing")
        let fresh = try await client.invalidate(tenant: "t0", token: token.value)
        #expect(fresh.value != token.value)

        let reply = try await client.request(tenant: "t0", path: "/api/ws/5/ticket/query", query: ["page": 1], body: ["a": 1], language: "en")
        #expect(reply.status == 200 && reply.returnCode == "000000")
        #expect(reply.body["item"]?["query"] == "page=1" && reply.body["item"]?["language"] == "en")

        await #expect(throws: BrokerCallError.rejected(code: -32001, message: "unknown tenant \"nobody\"", data: nil)) {
            try await client.token(tenant: "nobody")
        }
        do {
            _ = try await client.request(tenant: "t0", path: "/api/get_token")
            Issue.record("get_token was forwarded")
        } catch {
            #expect(error.code == -32602)
        }
        do {
            _ = try await SobotBrokerClient(socketPath: daemon.directory.file("none.sock")).health()
            Issue.record("a missing socket answered")
        } catch {
            guard case .unavailable = error else { Issue.record("\(error)"); return }
        }
        await daemon.shutdown()
    }

    @Test func withTokenRetriesOnceWithAFreshTokenAndNotTwice() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        let client = SobotBrokerClient(socketPath: daemon.socket)
        let seen = TokenLog()
        let result = try await client.withToken(tenant: "t0") { token in
            await seen.add(token)
            if await seen.count == 1 { throw SobotTokenExpired() }
            return "done"
        }
        #expect(result == "done")
        let tokens = await seen.tokens
        #expect(tokens.count == 2 && tokens[0] != tokens[1], "the second attempt has a fresh token")

        let again = TokenLog()
        await #expect(throws: SobotTokenExpired.self) {
            try await client.withToken(tenant: "t0") { token in
                await again.add(token)
                throw SobotTokenExpired()
            }
        }
        #expect(await again.count == 2, "retried once, not looped")
        await daemon.shutdown()
    }
}

private actor TokenLog {
    var tokens: [String] = []
    var count: Int { self.tokens.count }

    func add(_ token: String) { self.tokens.append(token) }
}
