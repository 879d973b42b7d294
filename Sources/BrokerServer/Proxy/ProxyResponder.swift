import BrokerCore
import NIOCore
import NIOHTTP1

/// What the proxy answers to each request, shared by all its connections: refusals decided on the
/// head alone, the caller's identity (its `SO_PEERCRED` on the Unix socket, its client key over TCP),
/// and the answer itself, from `ProxyFastPath` when it applies and from `ProxyRouter` otherwise.
struct ProxyResponder: Sendable {
    let router: ProxyRouter
    let fastPath: ProxyFastPath?
    let keys: HTTPProxyServer.KeyCheck
    let limits: HTTPProxyServer.Limits

    /// A refusal decided from the head alone: headers too large, or a declared body too large.
    func refusal(of head: HTTPRequestHead) -> ProxyResponse? {
        let headerBytes = head.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 } + head.uri.utf8.count
        if headerBytes > self.limits.maximumHeaderBytes {
            return .error(
                code: ErrorCode.invalidRequest,
                message: "invalid request: the request line and headers are larger than \(self.limits.maximumHeaderBytes >> 10) KiB",
                status: .requestHeaderFieldsTooLarge
            )
        }
        if let declared = head.headers.first(name: "content-length"), let length = Int(declared), length > self.limits.maximumBodySize {
            return self.bodyTooLarge
        }
        return nil
    }

    var bodyTooLarge: ProxyResponse {
        .error(
            code: ErrorCode.invalidRequest,
            message: "invalid request: the body is larger than \(self.limits.maximumBodySize >> 20) MiB",
            status: .payloadTooLarge
        )
    }

    /// The answer to a whole request, completed on `loop`. A local caller is judged by its access
    /// rules, a TCP caller by its client key.
    func respond(to request: ProxyRequest, peer: PeerCredentials?, on loop: EventLoop) -> EventLoopFuture<ProxyResponse> {
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? ""
        let context: CallContext
        if path == "/_broker/health" {
            context = CallContext(peer: peer ?? PeerCredentials(pid: 0, uid: UInt32.max, gid: UInt32.max))
        } else if let peer {
            context = CallContext(peer: peer)
        } else if let presented = Self.bearer(request.headers), let grant = self.keys(presented) {
            context = CallContext(remote: grant)
        } else {
            return loop.makeSucceededFuture(
                .error(
                    code: ErrorCode.permissionDenied,
                    message: "permission denied: a client key is required over TCP (Authorization: Bearer KEY)",
                    status: .unauthorized
                )
            )
        }
        if let fastPath = self.fastPath, let plan = fastPath.plan(request, context: context) {
            return fastPath.forward(plan, on: loop)
        }
        let router = self.router
        let answer = loop.makePromise(of: ProxyResponse.self)
        answer.completeWithTask { await router.respond(to: request, context: context) }
        return answer.futureResult
    }

    private static func bearer(_ headers: HTTPHeaders) -> String? {
        guard let value = headers.first(name: "authorization"), value.count > 7, value.prefix(7).lowercased() == "bearer " else { return nil }
        return String(value.dropFirst(7))
    }
}
