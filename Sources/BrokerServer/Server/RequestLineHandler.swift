import BrokerCore
import Metrics
import NIOCore

/// A line exceeded the cap; raised through the pipeline so the connection answers and closes.
public struct LineTooLongError: Error, Sendable {}

/// What the general (async) path hands back for each line it was given: the reply line, or nil when
/// nothing is owed (notifications). Exactly one per line, so this handler knows when it is idle.
public struct SlowPathReply: Sendable {
    public var bytes: [UInt8]?
}

/// The connection's first handler: splits the byte stream into lines, and answers `token.get` for a
/// fresh cached token right on the event loop (no hop to the cooperative pool, no JSON tree, one
/// lock, a pre-encoded reply), flushing once per read batch.
///
/// Every other line goes on to the general path. While any line of this connection is still with
/// the general path, every line follows it there, so replies keep their request order.
final class RequestLineHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = SlowPathReply
    typealias OutboundOut = ByteBuffer

    private var splitter: LineSplitter
    private let cache: TokenCache
    private let clock: any BrokerClock
    private let access: AccessControl
    private let audit: AuditLog?
    private let peer: PeerCredentials
    private let peerIsOwner: Bool
    private let servedCounter: Counter
    private var linesWithGeneralPath = 0
    private var unflushed = false
    private var closing = false
    /// Fast-path successes not yet handed to the audit log, and when they last were.
    private var unaudited: [TokenKey: Int] = [:]
    private var auditedAt: Double

    /// How often this connection hands its fast-path success counts to the audit log, which merges
    /// them across connections (see `AuditLog.recordServed`).
    static let auditInterval = 60.0
    /// A connection spreading its calls over many tenants hands its counts over at this many, so its
    /// own tally stays small however many tenants there are.
    static let auditHandOverSize = 1024
    /// A client that leaves its replies unread this long (outbound buffer over its high-water mark)
    /// is disconnected, so it cannot pin memory or a slot.
    static let stalledWriteTimeout = TimeAmount.seconds(30)

    /// A read NIO asked for while the client was not reading its replies; issued once it drains.
    private var heldRead = false
    private var stallTimer: Scheduled<Void>?

    init(
        maximumLineLength: Int,
        cache: TokenCache,
        clock: any BrokerClock,
        access: AccessControl,
        audit: AuditLog?,
        peer: PeerCredentials,
        servedCounter: Counter
    ) {
        self.servedCounter = servedCounter
        self.splitter = LineSplitter(maximumLength: maximumLineLength)
        self.cache = cache
        self.clock = clock
        self.access = access
        self.audit = audit
        self.peer = peer
        self.peerIsOwner = access.current.isOwner(uid: peer.uid)
        self.auditedAt = clock.monotonicNow()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !self.closing else { return }
        var bytes = Self.unwrapInboundIn(data)
        self.splitter.append(&bytes)
        while true {
            switch self.splitter.next() {
            case .needMoreData:
                return
            case .tooLong:
                self.closing = true
                context.fireErrorCaught(LineTooLongError())
                return
            case .line(let line):
                if self.linesWithGeneralPath == 0, let reply = self.fastReply(to: line, allocator: context.channel.allocator) {
                    context.write(Self.wrapOutboundOut(reply), promise: nil)
                    self.unflushed = true
                } else {
                    self.linesWithGeneralPath += 1
                    context.fireChannelRead(Self.wrapInboundOut(line))
                }
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if self.unflushed {
            self.unflushed = false
            context.flush()
        }
        if !self.unaudited.isEmpty, self.clock.monotonicNow() - self.auditedAt >= Self.auditInterval {
            self.flushAudit()
        }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.stallTimer?.cancel()
        self.flushAudit()
        context.fireChannelInactive()
    }

    /// Backpressure: while replies pile up unread, stop reading requests.
    func read(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            context.read()
        } else {
            self.heldRead = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.stallTimer?.cancel()
            self.stallTimer = nil
            if self.heldRead {
                self.heldRead = false
                context.read()
            }
        } else if self.stallTimer == nil {
            let channel = context.channel
            self.stallTimer = context.eventLoop.scheduleTask(in: Self.stalledWriteTimeout) {
                if !channel.isWritable { channel.close(promise: nil) }
            }
        }
        context.fireChannelWritabilityChanged()
    }

    private func flushAudit() {
        self.auditedAt = self.clock.monotonicNow()
        guard !self.unaudited.isEmpty else { return }
        self.audit?.recordServed(peer: self.peer, counts: self.unaudited)
        self.unaudited.removeAll(keepingCapacity: true)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // The over-long-line error reply answers no forwarded line; the connection closes after it.
        self.linesWithGeneralPath = max(0, self.linesWithGeneralPath - 1)
        guard let bytes = Self.unwrapOutboundIn(data).bytes else {
            promise?.succeed(())
            return
        }
        context.write(Self.wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: promise)
    }

    private func fastReply(to line: ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard let request = line.withUnsafeReadableBytes({ FastTokenRequest.parse($0) }),
            self.access.allowsTokenGet(self.peer, tenant: request.tenant, isOwner: self.peerIsOwner)
        else { return nil }
        let now = self.clock.monotonicNow()
        guard let served = self.cache.servable(tenant: request.tenant, region: request.region, now: now),
            let fragments = served.fragments
        else { return nil }
        self.unaudited[served.key, default: 0] += 1
        if self.unaudited.count >= Self.auditHandOverSize { self.flushAudit() }
        self.servedCounter.increment()
        var buffer = allocator.buffer(capacity: fragments.count + request.id.count + 32)
        FastTokenReply.write(id: request.id, fragments: fragments, expiresIn: max(0, Int64(served.token.expiresAt - now)), into: &buffer)
        return buffer
    }
}
