#if canImport(Glibc)
import Glibc
#endif
import BrokerCore

/// One client of a socket loop: its descriptor and peer, its protocol state (`ConnectionStateMachine`),
/// its general-path worker, and the fast-path successes it has not yet handed to the audit log.
/// Lives in its loop's slot table and is touched only on that thread.
struct ClientConnection {
    /// How often a connection hands its fast-path success counts to the audit log, which merges
    /// them across connections (see `AuditLog.recordServed`)…
    static let auditInterval = 60.0
    /// …or, checked after each read, sooner at this many runs of one token slot, so its own
    /// tally stays small.
    static let auditHandOverSize = 1024

    let descriptor: Int32
    let tag: UInt64
    let peer: PeerCredentials
    var machine: ConnectionStateMachine
    /// What the caller may fetch on the fast path, recomputed when the access policy is reloaded.
    private var grants: ConnectionGrants
    private var worker: GeneralPathWorker?
    private var unaudited = ServedTally()
    private var auditedAt: Double

    init(descriptor: Int32, tag: UInt64, peer: PeerCredentials, services: ConnectionServices, now: Double) {
        self.descriptor = descriptor
        self.tag = tag
        self.peer = peer
        self.grants = services.access.grants(for: peer)
        let privileged = services.admission.isPrivileged(uid: peer.uid)
        self.machine = ConnectionStateMachine(
            limits: services.limits,
            budget: privileged ? nil : services.requestBudget,
            gate: privileged ? nil : services.generalPathGate,
            uid: peer.uid,
            now: now
        )
        self.auditedAt = now
    }

    /// Reports one epoll event to the state machine, reading once if it wants input; returns how
    /// many `token.get`s the fast path answered.
    mutating func handle(_ event: Epoll.Event, buffer: UnsafeMutableRawBufferPointer, now: Double, services: ConnectionServices) -> Int {
        var served = 0
        if event.isReadable || event.isHangUp, self.machine.isReading {
            let count = read(self.descriptor, buffer.baseAddress, buffer.count)
            if count > 0 {
                served = self.received(UnsafeRawBufferPointer(rebasing: buffer[..<count]), now: now, services: services)
            } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
                self.machine.inputEnded()
            }
        }
        if event.isWritable { self.machine.writable() }
        if event.isHangUp { self.machine.peerGone() }
        return served
    }

    /// Sends what the state machine has pending, as far as the socket takes it, and reports how it went.
    mutating func sendPending(now: Double) {
        let descriptor = self.descriptor
        let sent = self.machine.withUnsentOutput { bytes in
            send(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
        }
        if sent >= 0 {
            self.machine.sent(sent, now: now)
        } else if errno == EAGAIN {
            self.machine.sendWouldBlock()
        } else if errno != EINTR {
            self.machine.sendFailed()
        }
    }

    /// Feeds what one read returned to the state machine; returns how many `token.get`s the fast path answered.
    private mutating func received(_ bytes: UnsafeRawBufferPointer, now: Double, services: ConnectionServices) -> Int {
        let served = self.answeringFast(now: now, services: services) { machine, answerFast in
            machine.received(bytes, now: now, answerFast: answerFast)
        }
        if self.unaudited.runs.count >= Self.auditHandOverSize {
            self.handOverAudit(now: now, audit: services.audit, force: true)
        }
        return served
    }

    /// Feeds a general-path reply to the state machine; returns how many `token.get`s the fast path
    /// answered from lines that were waiting behind it.
    mutating func replied(_ reply: [UInt8]?, now: Double, services: ConnectionServices) -> Int {
        self.answeringFast(now: now, services: services) { machine, answerFast in
            machine.replied(reply, now: now, answerFast: answerFast)
        }
    }

    /// Runs `event` on the state machine with this connection's fast path; returns how many lines
    /// the fast path answered.
    private mutating func answeringFast(
        now: Double,
        services: ConnectionServices,
        _ event: (inout ConnectionStateMachine, ConnectionStateMachine.FastAnswer) -> Void
    ) -> Int {
        // Once per event, not per request: a load and a compare while the policy is unchanged.
        self.grants = services.access.refreshed(self.grants, for: self.peer)
        var served = 0
        event(&self.machine) { line, output in
            guard Self.answerFast(line, now: now, grants: self.grants, services: services, into: &output, tally: &self.unaudited) else {
                return false
            }
            served += 1
            return true
        }
        return served
    }

    /// Hands `line` to this connection's general-path worker, starting the worker on first use.
    mutating func dispatch(_ line: [UInt8], services: ConnectionServices, loop: SocketLoop) {
        if let worker = self.worker {
            worker.submit(line)
            return
        }
        let tag = self.tag
        let worker = GeneralPathWorker(context: CallContext(peer: self.peer)) { [weak loop] reply in
            loop?.post(.reply(tag: tag, bytes: reply))
        }
        self.worker = worker
        worker.submit(line)
        services.startWorker(worker)
    }

    /// Hands the fast-path success counts to the audit log if `force` or the interval has passed.
    mutating func handOverAudit(now: Double, audit: AuditLog?, force: Bool) {
        guard force || now - self.auditedAt >= Self.auditInterval else { return }
        self.auditedAt = now
        guard !self.unaudited.isEmpty else { return }
        audit?.recordServed(peer: self.peer, counts: self.unaudited)
        self.unaudited.removeAll()
    }

    /// Called once, as the loop closes the descriptor: general-path work still running for this
    /// client is cancelled.
    mutating func closed(audit: AuditLog?, now: Double) {
        self.worker?.cancel()
        self.worker = nil
        self.handOverAudit(now: now, audit: audit, force: true)
    }

    /// The fast path: appends the reply and returns true, or returns false (leaving everything as
    /// it was) when the line is not a simple `token.get`, the caller may not have it, or there is no
    /// fresh token to serve. The general path then answers it, with the same bytes when it can.
    private static func answerFast(
        _ line: UnsafeRawBufferPointer,
        now: Double,
        grants: ConnectionGrants,
        services: ConnectionServices,
        into output: inout [UInt8],
        tally: inout ServedTally
    ) -> Bool {
        guard let request = FastTokenRequest.parse(line), grants.allowsTokenGet(tenant: request.tenant) else { return false }
        let id = UnsafeRawBufferPointer(rebasing: line[request.id])
        let slot = services.cache.serve(tenant: request.tenant, region: request.region, now: now) { expiresAt, fragments in
            FastTokenReply.write(id: id, fragments: fragments, expiresIn: max(0, Int64(expiresAt - now)), into: &output)
        }
        guard let slot else { return false }
        tally.count(slot)
        return true
    }
}
