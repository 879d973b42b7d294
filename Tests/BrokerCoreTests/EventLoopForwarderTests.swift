@testable import BrokerCore
import NIOCore
import NIOPosix
import SobotSimulator
import Testing

/// The proxy's event-loop forwarder against the simulator over real HTTP: answers as they came,
/// keep-alive reuse per loop, the deadline, and which base URLs it takes.
@Suite struct EventLoopForwarderTests {
    private static func call(_ index: Int) throws -> SobotCall {
        SobotCall(
            tenant: "t",
            region: "sg",
            method: .post,
            path: try SobotPath(validating: "/api/ws/5/ticket/query_ticket_list"),
            query: try SobotQuery(validatingEncoded: "page=\(index)"),
            body: Array(#"{"page_no":1}"#.utf8)
        )
    }

    @Test func answersAsTheyCameOverOneKeptAliveConnectionPerLoop() async throws {
        let simulator = SobotSimulator(tokenTTL: 3600)
        let port = try await simulator.start()
        let regions = RegionDirectory(baseURLs: ["sg": "http://127.0.0.1:\(port)", "us": "https://us.sobot.com"])
        let forwarder = EventLoopForwarder(regions: regions, timeouts: SobotClient.Timeouts(total: 60))
        #expect(forwarder.canForward(region: "sg") && !forwarder.canForward(region: "us") && !forwarder.canForward(region: "eu"))
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        for index in 0..<20 {
            let reply = try await forwarder.forward(try Self.call(index), region: "sg", token: "not-a-current-token-\(index)", on: loop).get()
            // The token header arrived (else 900001), and Sobot's refusal of it comes back as it came.
            #expect(reply.status == 200 && SobotClient.saysTokenExpired(reply.body), "\(String(decoding: reply.body, as: UTF8.self))")
            #expect(reply.contentType?.hasPrefix("application/json") == true)
        }
        #expect(simulator.connectionCount == 1, "one keep-alive connection served all 20 calls")
        #expect(simulator.businessRequestCount == 20)
        forwarder.shutdown()
        await simulator.stop()
    }

    @Test func aHungUpstreamFailsAtTheDeadline() async throws {
        let simulator = SobotSimulator(tokenTTL: 3600)
        let port = try await simulator.start()
        simulator.businessFault = .hang
        let forwarder = EventLoopForwarder(regions: RegionDirectory(baseURLs: ["sg": "http://127.0.0.1:\(port)"]), timeouts: SobotClient.Timeouts(total: 1))
        let started = ContinuousClock.now
        await #expect {
            _ = try await forwarder.forward(try Self.call(0), region: "sg", token: "token", on: MultiThreadedEventLoopGroup.singleton.next()).get()
        } throws: { error in
            (error as? SobotError) == .unavailable("timed out (no whole answer within 1 s)")
        }
        #expect(ContinuousClock.now - started < .seconds(30), "bounded by the 1 s deadline, with slack for a loaded machine")
        await simulator.stop()
    }

    @Test func nobodyListeningFailsAsUnavailable() async throws {
        let forwarder = EventLoopForwarder(regions: RegionDirectory(baseURLs: ["sg": "http://127.0.0.1:1"]), timeouts: SobotClient.Timeouts(total: 5))
        await #expect {
            _ = try await forwarder.forward(try Self.call(0), region: "sg", token: "token", on: MultiThreadedEventLoopGroup.singleton.next()).get()
        } throws: { error in
            "\(error)".hasPrefix("Sobot is unavailable: cannot connect") && !"\(error)".contains("token")
        }
    }

    @Test func readsPlainHTTPBaseURLsOnly() {
        let withPath = EventLoopForwarder.endpoint(plainHTTP: "http://sg.example.com:8080/base")
        #expect(withPath == EventLoopForwarder.Endpoint(host: "sg.example.com", port: 8080, pathPrefix: "/base", authority: "sg.example.com:8080"))
        #expect(EventLoopForwarder.endpoint(plainHTTP: "http://[::1]:81") == EventLoopForwarder.Endpoint(host: "::1", port: 81, pathPrefix: "", authority: "[::1]:81"))
        #expect(EventLoopForwarder.endpoint(plainHTTP: "http://h")?.port == 80)
        #expect(EventLoopForwarder.endpoint(plainHTTP: "https://sg.sobot.io") == nil)
        #expect(EventLoopForwarder.endpoint(plainHTTP: "http://h:99999") == nil, "a port the region check refuses is not read as 80")
    }
}
