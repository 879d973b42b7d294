import BrokerCore
import Logging
import Metrics

/// What a caller with no local identity may do: a client key presented over the HTTP proxy's TCP port.
public protocol RemoteCallerGrant: Sendable {
    /// The key's public id, for the audit log.
    var id: String { get }
    func allows(method: String, scope: AccessPolicy.Scope) -> Bool
}

/// Who is calling, as the connection knows it: handed to every method.
public struct CallContext: Sendable {
    /// The local caller (`SO_PEERCRED`); for a remote caller, an identity that matches no rule.
    public var peer: PeerCredentials
    /// Set for a caller over TCP: its client key decides what it may call, not `peer`.
    public var remote: (any RemoteCallerGrant)?

    public init(peer: PeerCredentials) {
        self.peer = peer
        self.remote = nil
    }

    public init(remote: any RemoteCallerGrant) {
        self.peer = PeerCredentials(pid: 0, uid: UInt32.max, gid: UInt32.max)
        self.remote = remote
    }
}

/// Turns one inbound line into at most one reply line: parsing, validation, batches, notifications,
/// and routing to the broker's own methods or an endpoint module.
public final class RPCDispatcher: Sendable {
    public typealias Handler = @Sendable (_ params: JSONValue?, _ context: CallContext) async throws(RPCError) -> JSONValue

    /// Batches larger than this are refused as a whole.
    public static let maximumBatchSize = 1000
    /// Requests of one batch answered at once.
    public static let batchConcurrency = 8
    /// A batch's encoded replies past which its remaining requests are refused, not run.
    public static let maximumBatchReplyBytes = 16 << 20

    private let handlers: [String: Handler]
    private let registry: ModuleRegistry
    private let moduleContext: ModuleContext
    private let access: AccessControl
    private let audit: AuditLog?
    private let logger: Logger
    /// `sobot.request` successes, counted per forwarded call: made once, as the socket loops' counter is.
    private let forwardedOK = Counter(label: BrokerMetrics.rpcRequests, dimensions: [("method", "sobot.request"), ("code", "ok")])

    public init(
        handlers: [String: Handler],
        registry: ModuleRegistry,
        moduleContext: ModuleContext,
        access: AccessControl,
        audit: AuditLog?,
        logger: Logger
    ) {
        self.handlers = handlers
        self.registry = registry
        self.moduleContext = moduleContext
        self.access = access
        self.audit = audit
        self.logger = logger
    }

    /// The reply line (with its `\n`) for one request line, or nil when nothing is owed
    /// (notifications, batches of notifications, blank lines).
    public func reply(toLine line: [UInt8], context: CallContext) async -> [UInt8]? {
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return nil }
        let document: JSONValue
        do {
            document = try JSONParser.parse(line)
        } catch {
            return RPCResponse.line(RPCResponse.failure(id: .null, error: .parseError(error.description)))
        }
        switch document {
        case .array(let batch):
            guard !batch.isEmpty else {
                return RPCResponse.line(RPCResponse.failure(id: .null, error: .invalidRequest("empty batch")))
            }
            guard batch.count <= Self.maximumBatchSize else {
                return RPCResponse.line(
                    RPCResponse.failure(id: .null, error: .invalidRequest("batch larger than \(Self.maximumBatchSize)"))
                )
            }
            return await self.replyLine(toBatch: batch, context: context)
        default:
            return await self.reply(to: document, context: context).map(RPCResponse.line)
        }
    }

    /// The reply line to a batch, its requests answered at most `batchConcurrency` at a time, so one
    /// line cannot start a thousand upstream calls at once. Replies are encoded as they arrive; once
    /// they pass `maximumBatchReplyBytes`, requests not yet started are answered with an error
    /// instead of being run, which bounds the memory one line can make the broker hold. Once the
    /// caller is gone (the task is cancelled), requests not yet started are not started.
    private func replyLine(toBatch batch: [JSONValue], context: CallContext) async -> [UInt8]? {
        await withTaskGroup(of: JSONValue?.self) { group in
            var line: [UInt8] = [UInt8(ascii: "[")]
            var replies = 0
            func append(_ reply: JSONValue?) {
                guard let reply else { return }
                if replies > 0 { line.append(UInt8(ascii: ",")) }
                line.append(contentsOf: JSONWriter.bytes(reply))
                replies += 1
            }
            for element in batch.prefix(Self.batchConcurrency) {
                group.addTask { await self.reply(to: element, context: context) }
            }
            var pending = batch.dropFirst(Self.batchConcurrency).makeIterator()
            for await reply in group {
                append(reply)
                guard !Task.isCancelled, let element = pending.next() else { continue }
                if line.count <= Self.maximumBatchReplyBytes {
                    group.addTask { await self.reply(to: element, context: context) }
                } else {
                    append(Self.refusal(of: element))
                    while let element = pending.next() { append(Self.refusal(of: element)) }
                }
            }
            guard replies > 0 else { return nil }
            line.append(contentsOf: [UInt8(ascii: "]"), 0x0a])
            return line
        }
    }

    /// The reply to a batch member left unrun because the batch's reply grew too large (nil for a notification).
    private static func refusal(of value: JSONValue) -> JSONValue? {
        switch RPCRequest.validate(value) {
        case .failure(let rejection):
            return RPCResponse.failure(id: rejection.id, error: rejection.error)
        case .success(let request):
            guard let id = request.id else { return nil }
            let message = "not run: the batch's reply passed \(Self.maximumBatchReplyBytes >> 20) MiB; send this request again on its own"
            return RPCResponse.failure(id: id, error: RPCError(code: RPCError.internalErrorCode, message: message))
        }
    }

    /// The reply object for one request, or nil for a notification.
    public func reply(to value: JSONValue, context: CallContext) async -> JSONValue? {
        let request: RPCRequest
        switch RPCRequest.validate(value) {
        case .success(let valid): request = valid
        case .failure(let failure): return RPCResponse.failure(id: failure.id, error: failure.error)
        }
        let outcome: Result<JSONValue, RPCError>
        if let refusal = self.refusal(of: request.method, params: request.params, context: context) {
            outcome = .failure(refusal)
        } else {
            do throws(RPCError) {
                outcome = .success(try await self.call(request, context: context))
            } catch {
                outcome = .failure(error)
            }
        }
        self.auditCall(request, context: context, outcome: outcome)
        self.count(request, outcome: outcome)
        guard let id = request.id else { return nil }
        switch outcome {
        case .success(let result): return RPCResponse.success(id: id, result: result)
        case .failure(let error): return RPCResponse.failure(id: id, error: error)
        }
    }

    /// Why a call of `method` with `params` may not run for this caller: a `tenant`, `tenants` or
    /// `region` that is not a valid name, or no access rule (or client key) allowing it. Nil when it may.
    public func refusal(of method: String, params: JSONValue?, context: CallContext) -> RPCError? {
        if let invalid = Self.invalidScope(params) { return invalid }
        let scope = AccessPolicy.Scope(params: params)
        if let remote = context.remote {
            guard remote.allows(method: method, scope: scope) else {
                return RPCError(
                    code: RPCError.permissionDeniedCode,
                    message: "permission denied: client key \(remote.id) may not call \(method)\(Self.describe(scope))"
                )
            }
            return nil
        }
        guard self.access.allows(context.peer, method: method, scope: scope) else {
            return RPCError(
                code: RPCError.permissionDeniedCode,
                message: "permission denied: uid \(context.peer.uid) may not call \(method)\(Self.describe(scope))"
            )
        }
        return nil
    }

    /// Why the request's `tenant`, `tenants` or `region` is not a tenant id or region name: checked
    /// before the access rules, any lookup or the method, so such a string never becomes a key.
    private static func invalidScope(_ params: JSONValue?) -> RPCError? {
        do throws(ModuleError) {
            try ParamReader.checkScope(params)
            return nil
        } catch {
            return RPCError(error)
        }
    }

    private static func describe(_ scope: AccessPolicy.Scope) -> String {
        switch scope {
        case .broker: ""
        case .everyTenant: " for every tenant"
        case .tenants(let tenants): " for tenant \(tenants.joined(separator: ", "))"
        }
    }

    /// Counts the request by method (names the broker does not serve collapse into `unknown`, so a
    /// client cannot create unbounded label values) and outcome.
    private func count(_ request: RPCRequest, outcome: Result<JSONValue, RPCError>) {
        let known = self.handlers[request.method] != nil || self.registry.method(named: request.method) != nil
        let code = switch outcome {
        case .success: "ok"
        case .failure(let error): String(error.code)
        }
        Counter(label: BrokerMetrics.rpcRequests, dimensions: [("method", known ? request.method : "unknown"), ("code", code)]).increment()
    }

    /// Records a call the HTTP proxy forwarded (or refused) outside JSON-RPC.
    public func auditForwarded(
        context: CallContext,
        tenant: String?,
        region: String?,
        outcome: Result<SobotCallReply, RPCError>,
        call: ForwardedCallRecord?
    ) {
        let code: Int?
        let kind: AuditLog.Outcome
        switch outcome {
        case .success: (code, kind) = (nil, .ok)
        case .failure(let error): (code, kind) = (error.code, error.code == RPCError.permissionDeniedCode ? .denied : .error)
        }
        if let code {
            Counter(label: BrokerMetrics.rpcRequests, dimensions: [("method", "sobot.request"), ("code", String(code))]).increment()
        } else {
            self.forwardedOK.increment()
        }
        guard let audit = self.audit else { return }
        if let remote = context.remote {
            audit.record(clientKey: remote.id, method: "sobot.request", tenant: tenant, region: region, outcome: kind, code: code, call: call)
        } else {
            audit.record(peer: context.peer, method: "sobot.request", tenants: tenant.map { [$0] } ?? [], region: region, outcome: kind, code: code, call: call)
        }
    }

    /// Records the call; `AuditLog` writes the names it was given only when they are valid ones.
    private func auditCall(_ request: RPCRequest, context: CallContext, outcome: Result<JSONValue, RPCError>) {
        guard let audit = self.audit else { return }
        let tenants: [String]
        switch request.params?["tenants"] {
        case .string(let all)?: tenants = [all]
        case .array(let list)?: tenants = list.compactMap(\.stringValue)
        default: tenants = request.params?["tenant"]?.stringValue.map { [$0] } ?? []
        }
        let region = request.params?["region"]?.stringValue
        let forwarded = self.registry.method(named: request.method)?.forwardedCall
        let kind: AuditLog.Outcome
        let code: Int?
        let call: ForwardedCallRecord?
        switch outcome {
        case .success(let result):
            (kind, code, call) = (.ok, nil, forwarded?(request.params, result))
        case .failure(let error):
            kind = error.code == RPCError.permissionDeniedCode ? .denied : .error
            (code, call) = (error.code, forwarded?(request.params, nil))
        }
        if let remote = context.remote {
            audit.record(clientKey: remote.id, method: request.method, tenant: tenants.first, region: region, outcome: kind, code: code, call: call)
        } else {
            audit.record(peer: context.peer, method: request.method, tenants: tenants, region: region, outcome: kind, code: code, call: call)
        }
    }

    private func call(_ request: RPCRequest, context: CallContext) async throws(RPCError) -> JSONValue {
        if let handler = self.handlers[request.method] {
            return try await handler(request.params, context)
        }
        if let method = self.registry.method(named: request.method) {
            do throws(ModuleError) {
                return try await method.handler(request.params, self.moduleContext)
            } catch {
                if error.code == ErrorCode.internalError {
                    self.logger.error("module method failed", metadata: ["method": "\(request.method)", "error": "\(error.message)"])
                }
                throw RPCError(error)
            }
        }
        if let module = self.registry.module(owning: request.method), module.status == .placeholder {
            let available = module.methods.map(\.name).joined(separator: ", ")
            throw RPCError(
                code: RPCError.methodNotFoundCode,
                message: "method not found: \(request.method) (module \(module.name) is a placeholder; available: \(available))"
            )
        }
        throw .methodNotFound(request.method)
    }
}
