import BrokerCore
import Logging
import Metrics
import Synchronization

/// What every connection of one server shares, read from any of its loops' threads.
final class ConnectionServices: Sendable {
    let dispatcher: RPCDispatcher
    /// Read directly by the fast path for `token.get`.
    let cache: TokenCache
    let clock: any BrokerClock
    let access: AccessControl
    let audit: AuditLog?
    let logger: Logger
    let limits: ConnectionStateMachine.Limits
    let requestBudget: RequestBytesBudget
    let generalPathGate = GeneralPathGate()
    let admission: ConnectionAdmission
    /// `token.get`s answered by the fast path (the dispatcher counts the rest).
    let fastTokenGets = Counter(label: BrokerMetrics.rpcRequests, dimensions: [("method", "token.get"), ("code", "ok")])
    /// General-path workers to run in the server's task group.
    let workers: AsyncStream<GeneralPathWorker>
    private let workerStarter: AsyncStream<GeneralPathWorker>.Continuation
    private let failed = Atomic<Bool>(false)

    init(
        dispatcher: RPCDispatcher,
        cache: TokenCache,
        clock: any BrokerClock,
        access: AccessControl,
        audit: AuditLog?,
        logger: Logger,
        limits: ConnectionStateMachine.Limits,
        requestBudget: RequestBytesBudget,
        admission: ConnectionAdmission
    ) {
        self.dispatcher = dispatcher
        self.cache = cache
        self.clock = clock
        self.access = access
        self.audit = audit
        self.logger = logger
        self.limits = limits
        self.requestBudget = requestBudget
        self.admission = admission
        (self.workers, self.workerStarter) = AsyncStream.makeStream(of: GeneralPathWorker.self)
    }

    /// Counts a new connection and returns nil, or returns why it is refused.
    func admitConnection(_ peer: PeerCredentials) -> String? {
        self.admission.admit(uid: peer.uid)
    }

    func connectionClosed(_ peer: PeerCredentials) {
        self.admission.release(uid: peer.uid)
    }

    /// Has the server's task group run `worker`; once the server has stopped, the worker is cancelled instead.
    func startWorker(_ worker: GeneralPathWorker) {
        if case .terminated = self.workerStarter.yield(worker) { worker.cancel() }
    }

    /// No more workers: the server's task group ends once those running end.
    func finishWorkers() {
        self.workerStarter.finish()
    }

    /// A loop could not go on (its epoll descriptor failed): the server stops and reports it.
    func loopFailed() {
        self.failed.store(true, ordering: .relaxed)
    }

    var hasFailed: Bool { self.failed.load(ordering: .relaxed) }
}
