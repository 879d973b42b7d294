import BrokerCore
import NIOCore
import NIOHTTP1

/// The HTTP proxy's common case, decided and forwarded without leaving the event loop that read the
/// request: a Sobot call this caller may make, for a tenant whose token is held fresh, to a region
/// with a plain-HTTP base URL (`EventLoopForwarder`). Anything else (a refusal, a missing token, a
/// `/_broker/` endpoint, an https region) goes to `ProxyRouter`, which answers it as before; both
/// paths check the same things in the same way and write the same audit lines.
struct ProxyFastPath: Sendable {
    /// A call cleared for the fast path, with the token it goes out with.
    struct Plan: Sendable {
        let call: SobotCall
        let key: TokenKey
        let token: String
        let context: CallContext
        /// The `X-Sobot-Region` header, for the audit line, as the general path records it.
        let regionHeader: String?
    }

    let cache: TokenCache
    let clock: any BrokerClock
    let forwarder: EventLoopForwarder
    let upstream: BrokerUpstream
    let dispatcher: RPCDispatcher

    /// The plan for `request`, or nil for the general path.
    func plan(_ request: ProxyRequest, context: CallContext) -> Plan? {
        let target = request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let rawPath = target.first.map(String.init) ?? ""
        guard !rawPath.hasPrefix("/_broker/"),
            let call = try? ProxyRouter.permittedCall(
                for: request,
                rawPath: rawPath,
                rawQuery: target.count > 1 ? String(target[1]) : "",
                context: context,
                dispatcher: self.dispatcher
            ),
            let (key, token) = self.cache.servable(tenant: call.tenant, region: call.region, now: self.clock.monotonicNow()),
            self.forwarder.canForward(region: key.region)
        else { return nil }
        return Plan(call: call, key: key, token: token.value, context: context, regionHeader: call.region)
    }

    /// Forwards `plan` on `loop`. A `900002` answer is handed to `BrokerUpstream.resend` (refresh once,
    /// retry once); the response completes on `loop`.
    func forward(_ plan: Plan, on loop: EventLoop) -> EventLoopFuture<ProxyResponse> {
        let upstream = self.upstream
        let dispatcher = self.dispatcher
        return self.forwarder.forward(plan.call, region: plan.key.region, token: plan.token, on: loop)
            .flatMap { reply -> EventLoopFuture<SobotCallReply> in
                guard SobotClient.saysTokenExpired(reply.body) else { return loop.makeSucceededFuture(reply) }
                let retried = loop.makePromise(of: SobotCallReply.self)
                retried.completeWithTask { try await upstream.resend(plan.call, key: plan.key, afterExpiredToken: plan.token) }
                return retried.futureResult
            }
            .map { reply in
                dispatcher.auditForwarded(
                    context: plan.context,
                    tenant: plan.key.tenant,
                    region: plan.regionHeader,
                    outcome: .success(reply),
                    call: ForwardedCallRecord(httpMethod: plan.call.method.rawValue, path: plan.call.path.value, status: reply.status)
                )
                return ProxyResponse(status: HTTPResponseStatus(statusCode: reply.status), contentType: reply.contentType ?? "application/json", body: reply.body)
            }
            .recover { error in
                let failure: RPCError =
                    switch error {
                    case let module as ModuleError: RPCError(module)
                    case let sobot as SobotError: RPCError(ModuleError(sobot))
                    default: RPCError(code: ErrorCode.internalError, message: "internal error: \(error)")
                    }
                dispatcher.auditForwarded(
                    context: plan.context,
                    tenant: plan.key.tenant,
                    region: plan.regionHeader,
                    outcome: .failure(failure),
                    call: ForwardedCallRecord(httpMethod: plan.call.method.rawValue, path: plan.call.path.value, status: nil)
                )
                return .error(failure)
            }
    }
}
