import NIOCore

/// First in a metrics connection's pipeline: closes the connection when no answer was sent within
/// `timeout` of it opening or of the previous answer (an idle or slow client), and when the client
/// sends more than `maximumRequestBytes` before it is answered (an oversized request head).
final class MetricsConnectionGuard: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let timeout: TimeAmount
    private let maximumRequestBytes: Int
    /// Bytes received since the last answer.
    private var received = 0
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount, maximumRequestBytes: Int) {
        self.timeout = timeout
        self.maximumRequestBytes = maximumRequestBytes
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.arm(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.deadline?.cancel()
        self.deadline = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.received += self.unwrapInboundIn(data).readableBytes
        guard self.received <= self.maximumRequestBytes else {
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
    }

    /// An answer went out: the client gets a fresh allowance of time and bytes for its next request.
    func flush(context: ChannelHandlerContext) {
        self.received = 0
        self.arm(context)
        context.flush()
    }

    private func arm(_ context: ChannelHandlerContext) {
        self.deadline?.cancel()
        self.deadline = context.eventLoop.assumeIsolated().scheduleTask(in: self.timeout) {
            context.close(promise: nil)
        }
    }
}
