import BrokerCore

/// The property the fuzzer checks on every input, and the reason the fast path may exist: whatever
/// line the fast reader accepts, the general parser also accepts as the same `token.get` request, and
/// the fast reply equals the general path's reply byte for byte.
public enum FastPathConsistency {
    /// Returns a description of the first disagreement, or nil when the two paths agree.
    public static func disagreement(on line: [UInt8]) -> String? {
        guard let fast = line.withUnsafeBytes({ FastTokenRequest.parse($0) }) else { return nil }
        guard let parsed = try? JSONParser.parse(line), case .success(let request) = RPCRequest.validate(parsed) else {
            return "the fast reader accepted a line the general path rejects"
        }
        guard request.method == "token.get", let id = request.id,
            request.params?["tenant"]?.stringValue == fast.tenant, request.params?["region"]?.stringValue == fast.region
        else { return "the fast reader read a different request" }
        let key = TokenKey(tenant: fast.tenant, region: fast.region ?? "sg")
        let token = LiveToken(value: "t\"\\é", issuedAt: 5_000, expiresAt: 5_100, expiresAtUnix: 1_800_000_100)
        let general = RPCResponse.line(RPCResponse.success(id: id, result: BrokerMethods.tokenResult(key: key, token: token, now: 5_050)))
        var fastReply: [UInt8] = []
        FastTokenReply.write(id: line[fast.id], fragments: FastTokenReply.fragments(key: key, token: token), expiresIn: 50, into: &fastReply)
        return fastReply == general ? nil : "the fast reply differs from the general path's"
    }
}
