import BrokerCore
import Foundation
import TestSupport
import Testing

/// A string that is not a tenant id never becomes a key: SQLite compares it whole, the param reader
/// refuses it, and the token engine tracks only keys the store holds.
@Suite struct TenantNameBoundaryTests {
    @Test func sqliteBindsAStringWithAnEmbeddedNULWhole() throws {
        let directory = TemporaryDirectory("sql")
        let connection = try SQLiteConnection(path: directory.file("nul.db"))
        var length: Int64 = 0
        var text = ""
        try connection.statement("SELECT length(CAST(?1 AS BLOB)), ?1").forEachRow([.text("t1\u{0}N")]) { row in
            length = row.int64(0)
            text = row.text(1)
        }
        #expect(length == 4)
        #expect(text == "t1\u{0}N")
        var empty: Bool?
        try connection.statement("SELECT ? IS NOT NULL AND length(?1) = 0").forEachRow([.text("")]) { empty = $0.int64(0) == 1 }
        #expect(empty == true, "an empty string binds as an empty value, not NULL")
    }

    @Test func aStoreLookupDoesNotStopAtANUL() async throws {
        let fixture = try await TokenEngineFixture()
        try fixture.addTenants(2)
        #expect(try fixture.store.credentialKeys(ofTenant: "t1\u{0}N").isEmpty)
        #expect(try fixture.store.credentialKeys(ofTenant: "t1") == [TokenKey(tenant: "t1", region: "sg")])
        await fixture.shutdown()
    }

    @Test func resolveNeverTracksAKeyTheStoreDoesNotHold() async throws {
        let fixture = try await TokenEngineFixture(clock: ManualClock())
        try fixture.addTenants(2)
        let manager = fixture.makeManager()
        try await manager.start()
        let tracked = await manager.statuses().count
        for name in ["t1\u{0}N", "t1\u{0}", "T1", "t1 ", String(repeating: "t", count: 65), ""] {
            await #expect(throws: TokenError.self) { _ = try await manager.resolve(tenant: name, region: nil) }
            await #expect(throws: TokenError.self) { _ = try await manager.resolve(tenant: name, region: "sg") }
        }
        #expect(await manager.statuses().count == tracked)
        #expect(manager.cache.tenantCount == 2)
        #expect(try await manager.resolve(tenant: "t1", region: nil) == TokenKey(tenant: "t1", region: "sg"))
        await fixture.shutdown()
    }

    @Test(arguments: ["t1\u{0}N", "T1", "t1.x", "t1 ", String(repeating: "a", count: 65), "é"])
    func theParamReaderRefusesWhatIsNotATenantIDWithoutEchoingIt(_ tenant: String) throws {
        let params: JSONValue = ["tenant": .string(tenant), "region": "sg"]
        let reader = try ParamReader(params, allowed: ["tenant", "region"])
        #expect(throws: ModuleError.invalidParams("tenant: not a tenant id (1-64 of [a-z0-9_-])")) { try reader.tenantID("tenant") }
        #expect(throws: ModuleError.invalidParams("tenant: not a tenant id (1-64 of [a-z0-9_-])")) { try ParamReader.checkScope(params) }
        #expect(throws: ModuleError.self) { try ParamReader.checkScope(["tenants": [.string("t0"), .string(tenant)]]) }
    }

    @Test func theParamReaderAcceptsTenantIDsAndRegionNames() throws {
        let params: JSONValue = ["tenant": .string("acme_corp-2"), "region": "us-east-1", "tenants": ["a", "b"]]
        try ParamReader.checkScope(params)
        let reader = try ParamReader(params, allowed: ["tenant", "region", "tenants"])
        #expect(try reader.tenantID("tenant") == "acme_corp-2")
        #expect(try reader.optionalRegion("region") == "us-east-1")
        #expect(throws: ModuleError.invalidParams("region: not a region name (1-32 of [a-z0-9-])")) {
            try ParamReader.checkScope(["region": "sg\u{0}x"])
        }
    }
}
