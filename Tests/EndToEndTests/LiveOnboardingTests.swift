import BrokerCore
import Foundation
import TestSupport
import Testing

/// Changes made with the CLI while the daemon runs take effect without a restart.
@Suite(.heavy) struct LiveOnboardingTests {
    @Test func addedTenantsAreServedAndRemovedOnesStopAtOnce() async throws {
        let daemon = try await RunningDaemon(tenants: 2)
        #expect(try await daemon.call("token.get", ["tenant": "t0"]).get()["token"] != nil)
        daemon.simulator.register(appid: "app9", appKey: "key-nine")
        let added = try await runBroker(
            ["tenant", "add", "t9", "--region", "sg", "--appid", "app9", "--app-key-stdin"],
            environment: daemon.environment,
            stdin: "key-nine\n"
        )
        #expect(added.status == 0 && added.stdout.contains("the running daemon reloaded"), "\(added.stdout) \(added.stderr)")
        #expect(try await daemon.call("token.get", ["tenant": "t9"]).get()["token"] != nil)

        let removed = try await runBroker(["tenant", "remove", "t0"], environment: daemon.environment)
        #expect(removed.status == 0 && removed.stdout.contains("reloaded"))
        guard case .failure(let error) = try await daemon.call("token.get", ["tenant": "t0"]) else {
            Issue.record("a removed tenant's token must not be served")
            return
        }
        #expect(error.code == -32001)
        await daemon.shutdown()
    }

    @Test func theDaemonNoticesChangesItWasNotToldAbout() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        daemon.simulator.register(appid: "quiet", appKey: "quiet-key")
        let store = try BrokerHome(paths: BrokerPaths(home: daemon.home)).openStore()
        try store.upsert([TenantDefinition(id: "quiet", name: nil, credentials: [CredentialDefinition(region: "sg", appid: "quiet", appKey: "quiet-key")])], now: 1)
        _ = try store.remove(tenant: "t0", region: nil)
        let noticed = await eventually(timeout: 60) {
            guard case .success(let list) = try? await daemon.call("tenant.list") else { return false }
            let ids = list["tenants"]?.arrayValue?.compactMap { $0["id"]?.stringValue }
            return ids == ["quiet"]
        }
        #expect(noticed)
        #expect(try await daemon.call("broker.health").get()["tenants"] == 1)
        await daemon.shutdown()
    }

    @Test func fixingAWrongKeyTakesEffectWithoutWaitingOutTheHold() async throws {
        let daemon = try await RunningDaemon(tenants: 1, start: false)
        daemon.simulator.register(appid: "app0", appKey: "the-right-key")
        try await daemon.start()
        guard case .failure(let rejected) = try await daemon.call("token.get", ["tenant": "t0"]) else {
            Issue.record("the wrong key must be rejected")
            return
        }
        #expect(rejected.data?["ret_code"] == "900003")
        let fixed = try await runBroker(
            ["tenant", "add", "t0", "--region", "sg", "--appid", "app0", "--app-key-stdin"],
            environment: daemon.environment,
            stdin: "the-right-key\n"
        )
        #expect(fixed.status == 0)
        #expect(try await daemon.call("token.get", ["tenant": "t0"]).get()["token"] != nil)
        await daemon.shutdown()
    }
}
