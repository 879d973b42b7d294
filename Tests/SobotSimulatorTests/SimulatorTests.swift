import BrokerCore
import Logging
import SobotSimulator
import TestSupport
import Testing

/// The simulator behaves like the Sobot API the broker must survive, over real HTTP.
@Suite struct SimulatorTests {
    struct Harness {
        let simulator = SobotSimulator(tokenTTL: 60)
        let client: SobotClient

        /// - Parameter timeout: the client's bound on a whole call. Short only where a test waits
        ///   for it (a hanging upstream); on a loaded machine a normal call can take a second.
        init(timeout: Double = 10) async throws {
            self.simulator.register(appid: "1", appKey: "2")
            let port = try await self.simulator.start()
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            self.client = SobotClient(
                regions: RegionDirectory(baseURLs: ["sg": "http://127.0.0.1:\(port)"]),
                timeouts: .init(connect: timeout, read: timeout, total: timeout),
                logger: logger
            )
        }

        func token(appid: String = "1", appKey: String = "2") async throws(SobotError) -> IssuedToken {
            try await self.client.fetchToken(region: "sg", appid: appid, appKey: appKey, createTime: Int64(SystemClock().unixNow()))
        }

        func shutdown() async {
            try? await self.client.shutdown()
            await self.simulator.stop()
        }
    }

    @Test func issuesTokensForValidSignaturesAndRejectsOthers() async throws {
        let harness = try await Harness()
        let issued = try await harness.token()
        #expect(issued.value.count == 32)
        #expect(issued.lifetime == 60)
        await #expect(throws: SobotError.rejected(retCode: "900003", retMsg: "signature error")) { _ = try await harness.token(appKey: "wrong") }
        await #expect(throws: SobotError.rejected(retCode: "900004", retMsg: "no API configuration for the company")) {
            _ = try await harness.token(appid: "unknown")
        }
        #expect(harness.simulator.tokenRequestCount == 3)
        await harness.shutdown()
    }

    @Test func everyIssueRevokesThePreviousToken() async throws {
        let harness = try await Harness()
        let first = try await harness.token()
        let body: JSONValue = ["page_size": 5]
        _ = try await harness.client.post(region: "sg", path: "/marketing-open/api/5/marketing_subject/query_page", token: first.value, body: body)
        let second = try await harness.token()
        #expect(first.value != second.value)
        await #expect(throws: SobotError.rejected(retCode: "900002", retMsg: "token expired, get a new one")) {
            _ = try await harness.client.post(region: "sg", path: "/marketing-open/api/5/marketing_subject/query_page", token: first.value, body: body)
        }
        await #expect(throws: SobotError.rejected(retCode: "900001", retMsg: "token empty")) {
            _ = try await harness.client.post(region: "sg", path: "/marketing-open/api/5/marketing_subject/query_page", token: "", body: body)
        }
        await harness.shutdown()
    }

    @Test(arguments: [JSONValue.integer(Int64.max), .integer(0), .string("99999999999")])
    func aPageNumberOutOfRangeIsAParameterException(_ pageNo: JSONValue) async throws {
        let harness = try await Harness()
        let token = try await harness.token().value
        await #expect(throws: SobotError.rejected(retCode: "999994", retMsg: "parameter exception")) {
            _ = try await harness.client.post(
                region: "sg", path: "/marketing-open/api/5/marketing_subject/query_page", token: token, body: ["page_no": pageNo, "page_size": 100]
            )
        }
        await harness.shutdown()
    }

    @Test func pagesTheMarketingDataAndChecksPageSize() async throws {
        let harness = try await Harness()
        let token = try await harness.token().value
        let path = "/marketing-open/api/5/marketing_subject/query_page"
        let last = try await harness.client.post(region: "sg", path: path, token: token, body: ["page_no": 4, "page_size": 10])
        #expect(last["items"]?.arrayValue?.count == 7)
        #expect(last["total_count"] == "37")
        #expect(last["page_count"] == 4)
        await #expect(throws: SobotError.rejected(retCode: "999994", retMsg: "parameter exception")) {
            _ = try await harness.client.post(region: "sg", path: path, token: token, body: ["page_size": 101])
        }
        await harness.shutdown()
    }

    @Test(arguments: [
        (SimulatorFault.httpStatus(500), "HTTP 500"),
        (.garbage, "unreadable reply"),
        (.hang, "timed out"),
        (.returnCode("999999"), "999999"),
    ])
    func faultsLookLikeAFailingUpstream(_ fault: SimulatorFault, _ expected: String) async throws {
        // A short deadline for the hang, but long enough for the healthy call after it on a loaded
        // machine (1 s and 3 s ran out there, with the whole suite and a compiler on two cores).
        let harness = try await Harness(timeout: fault == .hang ? 5 : 10)
        harness.simulator.fault = fault
        await #expect {
            _ = try await harness.token()
        } throws: { error in
            "\(error)".contains(expected)
        }
        harness.simulator.fault = .none
        #expect(try await harness.token().value.count == 32)
        await harness.shutdown()
    }

    @Test func faultNamesParse() {
        #expect(SimulatorFault(name: "http503") == .httpStatus(503))
        #expect(SimulatorFault(name: "ret:900002") == .returnCode("900002"))
        #expect(SimulatorFault(name: "latency:25") == .latency(milliseconds: 25))
        #expect(SimulatorFault(name: "bogus") == nil)
    }
}
