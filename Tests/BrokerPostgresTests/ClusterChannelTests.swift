import BrokerCore
import BrokerPostgres
import Testing

@Suite struct ClusterChannelTests {
    @Test func aTokenPayloadRoundTripsAndHoldsNoSecret() {
        let version = TokenVersion(key: TokenKey(tenant: "acme", region: "sg"), revision: 3, generation: 42)
        let payload = ClusterChannel.tokenPayload(version)
        #expect(payload == "token 42 acme sg")
        #expect(ClusterChannel.parse(payload) == .token(key: version.key, generation: 42))
        #expect(ClusterChannel.parse(ClusterChannel.configurationPayload) == .configuration)
    }

    @Test(arguments: ["", "token", "token x acme sg", "token 1 ACME sg", "token 1 acme", "token 1 acme sg extra", "token 1 acme ", "hello"])
    func anUnknownPayloadIsIgnored(_ payload: String) {
        #expect(ClusterChannel.parse(payload) == nil)
    }
}
