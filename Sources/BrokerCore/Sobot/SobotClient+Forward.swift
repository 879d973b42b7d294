import AsyncHTTPClient
import NIOCore
import NIOHTTP1

extension SobotClient {
    /// Sends a whole business call to `region`'s base URL with `token`, and returns Sobot's answer as
    /// it came, whatever its status or `ret_code`. Fails only when no answer came (network, deadline)
    /// or the answer is larger than `SobotCall.maximumBodySize`. Never logs the query or a body.
    public func forward(_ call: SobotCall, region: String, token: String) async throws(SobotError) -> SobotCallReply {
        guard let base = self.regions.baseURL(for: region) else {
            throw .unavailable("no base URL for region \"\(region)\"")
        }
        guard IssuedToken.isWellFormed(token) else { throw .unavailable("the token is not a valid header value") }
        var headers = HTTPHeaders()
        headers.add(name: "accept", value: "application/json")
        headers.add(name: "token", value: token)
        if let language = call.language { headers.add(name: "language", value: language) }
        if call.body != nil { headers.add(name: "content-type", value: call.contentType ?? "application/json") }
        let started = ContinuousClock.now
        do {
            let response = try await self.exchange(
                url: base + call.path.value + (call.query.encoded.isEmpty ? "" : "?" + call.query.encoded),
                method: HTTPMethod(rawValue: call.method.rawValue),
                headers: headers,
                body: call.body,
                maximumReplySize: SobotCall.maximumBodySize
            )
            BrokerMetrics.recordUpstreamCall(region: region, endpoint: "forward", outcome: "ok", duration: ContinuousClock.now - started)
            return SobotCallReply(
                status: Int(response.status.code),
                contentType: response.headers.first(name: "content-type"),
                body: response.body.map { Array(buffer: $0) } ?? []
            )
        } catch {
            BrokerMetrics.recordUpstreamCall(region: region, endpoint: "forward", outcome: "unavailable", duration: ContinuousClock.now - started)
            if error is ResponseAccumulator.ResponseTooBigError {
                throw .unavailable("the reply is larger than \(SobotCall.maximumBodySize >> 20) MiB")
            }
            throw .unavailable(Self.describe(error))
        }
    }

    /// Whether a reply body says the token expired (`ret_code` 900002), whatever its HTTP status.
    /// Such a reply is small: a larger body is a business answer and is not parsed for this.
    public static func saysTokenExpired(_ body: [UInt8]) -> Bool {
        guard body.count <= 64 << 10, let reply = try? JSONParser.parse(body) else { return false }
        return SobotReply.returnCode(reply) == SobotReturnCode.tokenExpired
    }
}
