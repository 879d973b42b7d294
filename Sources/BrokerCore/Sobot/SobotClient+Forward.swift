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
        var request = HTTPClientRequest(url: base + call.target)
        request.method = HTTPMethod(rawValue: call.method.rawValue)
        request.headers = Self.headers(for: call, token: token)
        if let body = call.body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let http = self.http
        let prepared = request
        let started = ContinuousClock.now
        do {
            let reply = try await withDeadline(seconds: self.timeouts.total) {
                let response = try await http.execute(prepared, timeout: .seconds(3600))
                let body = try await response.body.collect(upTo: SobotCall.maximumBodySize)
                return SobotCallReply(status: Int(response.status.code), contentType: response.headers.first(name: "content-type"), body: Array(buffer: body))
            }
            BrokerMetrics.recordUpstreamCall(region: region, endpoint: "forward", outcome: "ok", duration: ContinuousClock.now - started)
            return reply
        } catch {
            BrokerMetrics.recordUpstreamCall(region: region, endpoint: "forward", outcome: "unavailable", duration: ContinuousClock.now - started)
            if error is NIOTooManyBytesError { throw .unavailable("the reply is larger than \(SobotCall.maximumBodySize >> 20) MiB") }
            throw .unavailable(Self.describe(error))
        }
    }

    /// The headers a forwarded call goes out with, whichever client sends it: `accept`, the broker's
    /// `token`, and the caller's `language` and (with a body) `content-type`; nothing else of the caller's.
    static func headers(for call: SobotCall, token: String) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.reserveCapacity(6)
        headers.add(name: "accept", value: "application/json")
        headers.add(name: "token", value: token)
        if let language = call.language { headers.add(name: "language", value: language) }
        if call.body != nil { headers.add(name: "content-type", value: call.contentType ?? "application/json") }
        return headers
    }

    /// Whether a reply body says the token expired (`ret_code` 900002), whatever its HTTP status.
    /// Such a reply is small: a larger body is a business answer and is not parsed for this.
    public static func saysTokenExpired(_ body: [UInt8]) -> Bool {
        // Almost every reply is not one: parsed only when the code's digits appear at all.
        guard body.count <= 64 << 10, Self.contains(body, Self.tokenExpiredDigits), let reply = try? JSONParser.parse(body) else { return false }
        return SobotReply.returnCode(reply) == SobotReturnCode.tokenExpired
    }

    private static let tokenExpiredDigits = Array(SobotReturnCode.tokenExpired.utf8)

    private static func contains(_ bytes: [UInt8], _ needle: [UInt8]) -> Bool {
        guard let first = needle.first, bytes.count >= needle.count else { return false }
        var index = 0
        let last = bytes.count - needle.count
        while index <= last {
            if bytes[index] == first, bytes[index..<index + needle.count].elementsEqual(needle) { return true }
            index += 1
        }
        return false
    }
}
