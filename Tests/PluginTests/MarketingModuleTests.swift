import BrokerCore
import CRM
import Marketing
import SobotSimulator
import TestSupport
import Testing

/// The marketing module against the simulator over real HTTP, through the broker's real upstream
/// caller and token engine.
@Suite struct MarketingModuleTests {
    struct Harness {
        let fixture: TokenEngineFixture
        let manager: TokenManager
        let context: ModuleContext
        let registry: ModuleRegistry

        init(tenants: Int = 3) async throws {
            self.fixture = try await TokenEngineFixture()
            try self.fixture.addTenants(tenants)
            self.manager = self.fixture.makeManager(policy: TokenEngineFixture.unpacedPolicy)
            try await self.manager.start()
            let upstream = BrokerUpstream(tokens: self.manager, client: self.fixture.client, store: AsyncSQLiteStore(self.fixture.store), logger: self.fixture.logger)
            self.context = ModuleContext(upstream: upstream, logger: self.fixture.logger, clock: self.fixture.clock)
            self.registry = try ModuleRegistry([MarketingModule(), CRMModule()])
        }

        func call(_ method: String, _ params: JSONValue) async throws(ModuleError) -> JSONValue {
            guard let handler = self.registry.method(named: method)?.handler else { throw .methodNotFound(method, reason: "test") }
            return try await handler(params, self.context)
        }
    }

    @Test func pagesThroughThirtySevenSubjects() async throws {
        let harness = try await Harness()
        let page = try await harness.call("marketing.subject.query", ["tenant": "t0", "page_size": 10, "page_no": 4])
        #expect(page["items"]?.arrayValue?.count == 7)
        #expect(page["page_count"] == 4)
        #expect(page["total_count"] == 37, "strings from upstream become numbers")
        #expect(page["page_size"] == 10)
        let item = try #require(page["items"]?.arrayValue?.first)
        #expect(item["subjectid"]?.stringValue?.count == 25, "25-digit ids survive as strings")
        #expect(item["status"]?.integerValue != nil)
        await harness.fixture.shutdown()
    }

    @Test func allPagesMergesEveryPage() async throws {
        let harness = try await Harness()
        let before = harness.fixture.simulator.businessRequestCount
        let all = try await harness.call("marketing.subject.query", ["tenant": "t0", "page_size": 10, "all_pages": true])
        let items = try #require(all["items"]?.arrayValue)
        #expect(items.count == 37)
        #expect(Set(items.compactMap { $0["subjectid"]?.stringValue }).count == 37)
        #expect(all["pages_fetched"] == 4 && all["truncated"] == false && all["total_count"] == 37)
        #expect(harness.fixture.simulator.businessRequestCount == before + 4)
        await harness.fixture.shutdown()
    }

    @Test func filtersReachTheUpstream() async throws {
        let harness = try await Harness()
        let deleted = try await harness.call("marketing.subject.query", ["tenant": "t0", "status": -1, "page_size": 100])
        #expect(deleted["total_count"] == 4)
        let catalogs = try await harness.call("marketing.catalog.query", ["tenant": "t0", "status": "1"])
        #expect(catalogs["total_count"] == 4)
        let one = try await harness.call("marketing.subject.query", ["tenant": "t0", "catalogid": .bigInteger("1123412432341234123412432"), "page_size": 100])
        #expect(one["total_count"] == 9)
        #expect(one["items"]?.arrayValue?.allSatisfy { $0["catalogid"] == "1123412432341234123412432" } == true)
        await harness.fixture.shutdown()
    }

    @Test func multilingualPlaceholdersPassThroughAndAreFlagged() async throws {
        let harness = try await Harness()
        let catalogs = try await harness.call("marketing.catalog.query", ["tenant": "t0"])
        let spring = try #require(catalogs["items"]?.arrayValue?.first { $0["name"]?.stringValue?.hasPrefix("Spring") == true })
        #expect(spring["name"] == "Spring campaign{dc_spring}")
        #expect(spring["multilingual"] == true)
        #expect(spring["placeholders"] == ["dc_spring"])
        let loyalty = try #require(catalogs["items"]?.arrayValue?.first { $0["name"] == "Loyalty" })
        #expect(loyalty["multilingual"] == false)
        await harness.fixture.shutdown()
    }

    @Test(arguments: [
        ["tenant": "t0", "page_size": 0],
        ["tenant": "t0", "page_size": 101],
        ["tenant": "t0", "page_no": 0],
        ["tenant": "t0", "status": 2],
        ["tenant": "t0", "status": 0],
        ["tenant": "t0", "catalogid": true],
        ["tenant": "t0", "colour": "red"],
        ["tenant": "t0", "all_pages": "yes"],
        ["tenants": [], "page_size": 10],
        ["tenant": "t0", "tenants": ["t1"]],
        [:],
    ] as [JSONValue])
    func invalidParamsNeverReachTheUpstream(_ params: JSONValue) async throws {
        let harness = try await Harness()
        let before = harness.fixture.simulator.businessRequestCount
        await #expect {
            _ = try await harness.call("marketing.subject.query", params)
        } throws: { error in
            guard (error as? ModuleError)?.code == ErrorCode.invalidParams else { return false }
            return true
        }
        #expect(harness.fixture.simulator.businessRequestCount == before)
        await harness.fixture.shutdown()
    }

    @Test func aTokenTakenElsewhereMidCallRecoversWithOneRefreshAndOneRetry() async throws {
        let harness = try await Harness()
        _ = try await harness.call("marketing.catalog.query", ["tenant": "t0"])
        harness.fixture.simulator.issueTokenElsewhere(appid: "tapp0")
        let tokenCalls = harness.fixture.simulator.tokenRequestCount
        let businessCalls = harness.fixture.simulator.businessRequestCount
        let result = try await harness.call("marketing.catalog.query", ["tenant": "t0"])
        #expect(result["total_count"] == 5)
        #expect(harness.fixture.simulator.tokenRequestCount == tokenCalls + 1)
        #expect(harness.fixture.simulator.businessRequestCount == businessCalls + 2)
        await harness.fixture.shutdown()
    }

    @Test func aSecondTokenExpiredInARowSurfacesInsteadOfLooping() async throws {
        let harness = try await Harness()
        harness.fixture.simulator.businessFault = .returnCode("900002")
        let businessCalls = harness.fixture.simulator.businessRequestCount
        await #expect(throws: ModuleError(SobotError.rejected(retCode: "900002", retMsg: "token expired"))) {
            _ = try await harness.call("marketing.catalog.query", ["tenant": "t0"])
        }
        #expect(harness.fixture.simulator.businessRequestCount == businessCalls + 2)
        await harness.fixture.shutdown()
    }

    @Test func crossTenantQueriesReportEachTenantAndOneBadKeyFailsOnlyItself() async throws {
        let harness = try await Harness(tenants: 3)
        harness.fixture.simulator.register(appid: "tapp1", appKey: "rotated-upstream")
        let result = try await harness.call("marketing.subject.query", ["tenants": "*", "all_pages": true])
        let results = try #require(result["results"]?.arrayValue)
        #expect(results.map { $0["tenant"] } == ["t0", "t1", "t2"])
        #expect(results.allSatisfy { $0["region"] == "sg" })
        #expect(result["succeeded"] == 2 && result["failed"] == 1)
        #expect(results[0]["result"]?["items"]?.arrayValue?.count == 37)
        #expect(results[2]["result"]?["items"]?.arrayValue?.count == 37)
        #expect(results[1]["error"]?["code"] == .integer(Int64(ErrorCode.upstreamRejected)))
        #expect(results[1]["error"]?["data"]?["ret_code"] == "900003")
        let named = try await harness.call("marketing.catalog.query", ["tenants": ["t2", "ghost"]])
        #expect(named["results"]?.arrayValue?.map { $0["tenant"] } == ["ghost", "t2"])
        #expect(named["results"]?.arrayValue?.first?["error"]?["code"] == .integer(Int64(ErrorCode.unknownTenant)))
        await harness.fixture.shutdown()
    }
}

extension MarketingModuleTests {
    /// A fan-out over tenants of one and two regions answers every (tenant, region), or only the
    /// region asked for, with one error for a tenant that lacks it.
    @Test func aFanOutAnswersEveryRegionOfTenantsWithTwo() async throws {
        let harness = try await Harness(tenants: 2)
        harness.fixture.simulator.register(appid: "us-app", appKey: "us-secret")
        try harness.fixture.store.upsert(
            [TenantDefinition(id: "t1", name: nil, credentials: [CredentialDefinition(region: "us", appid: "us-app", appKey: "us-secret")])],
            now: Int64(harness.fixture.clock.unixNow())
        )
        try await harness.manager.reload()
        let every = try await harness.call("marketing.catalog.query", ["tenants": "*"])
        let results = try #require(every["results"]?.arrayValue)
        #expect(results.map { "\($0["tenant"]?.stringValue ?? "")/\($0["region"]?.stringValue ?? "")" } == ["t0/sg", "t1/sg", "t1/us"])
        #expect(every["succeeded"] == 3 && every["failed"] == 0)
        let usOnly = try await harness.call("marketing.catalog.query", ["tenants": "*", "region": "us"])
        let usResults = try #require(usOnly["results"]?.arrayValue)
        #expect(usResults.count == 2 && usOnly["succeeded"] == 1)
        #expect(usResults.first { $0["tenant"] == "t0" }?["error"]?["code"] == .integer(Int64(ErrorCode.unknownTenant)))
        let single = try await harness.call("marketing.catalog.query", ["tenant": "t1", "region": "us"])
        #expect(single["items"] != nil)
        await harness.fixture.shutdown()
    }
}

@Suite struct ModuleRegistryTests {
    struct Clashing: EndpointModule {
        let name: String
        let status = ModuleStatus.active
        let version = "0"
        let summary = "test"
        let methodName: String
        var methods: [ModuleMethod] {
            [ModuleMethod(name: self.methodName, summary: "", params: []) { _, _ throws(ModuleError) in .null }]
        }
    }

    @Test func duplicateMethodsAndModulesAreRejected() {
        #expect(throws: RegistryError.duplicateModule("marketing")) { try ModuleRegistry([MarketingModule(), MarketingModule()]) }
        #expect(throws: RegistryError.outsideNamespace(method: "marketing.catalog.query", module: "other")) {
            try ModuleRegistry([MarketingModule(), Clashing(name: "other", methodName: "marketing.catalog.query")])
        }
        #expect(throws: RegistryError.reservedNamespace("token")) { try ModuleRegistry([Clashing(name: "token", methodName: "token.steal")]) }
        #expect(throws: RegistryError.duplicateMethod("y.a")) {
            try ModuleRegistry([Clashing(name: "x", methodName: "x.a"), DoubleMethod()])
        }
    }

    struct DoubleMethod: EndpointModule {
        let name = "y"
        let status = ModuleStatus.active
        let version = "0"
        let summary = "test"
        var methods: [ModuleMethod] {
            [ModuleMethod(name: "y.a", summary: "", params: []) { _, _ throws(ModuleError) in .null },
             ModuleMethod(name: "y.a", summary: "", params: []) { _, _ throws(ModuleError) in .null }]
        }
    }

    @Test func listingAndEnablement() throws {
        let registry = try ModuleRegistry([MarketingModule(), CRMModule()])
        let modules = try #require(registry.listing["modules"]?.arrayValue)
        #expect(modules.map { $0["name"] } == ["marketing", "crm"])
        #expect(modules[0]["status"] == "active")
        #expect(modules[0]["methods"] == ["marketing.catalog.query", "marketing.subject.query"])
        #expect(modules[1]["status"] == "placeholder")
        let onlyCRM = try ModuleRegistry([MarketingModule(), CRMModule()], enabled: ["crm"])
        #expect(onlyCRM.method(named: "marketing.catalog.query") == nil)
        #expect(onlyCRM.method(named: "crm.describe") != nil)
    }
}
