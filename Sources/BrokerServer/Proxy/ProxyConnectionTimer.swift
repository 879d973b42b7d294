import NIOCore
import NIOHTTP1

/// Bounds how long a proxy connection may go without a whole request: a connection that sends no
/// complete request head within `waitLimit` of opening (or of its last response), or no whole body
/// within `bodyLimit` of its head, is closed. A client trickling bytes (slowloris) therefore holds
/// its one connection for a bounded time and never anyone else's.
final class ProxyConnectionTimer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let waitLimit: TimeAmount
    private let bodyLimit: TimeAmount
    private var timer: Scheduled<Void>?

    init(waitLimit: TimeAmount, bodyLimit: TimeAmount) {
        self.waitLimit = waitLimit
        self.bodyLimit = bodyLimit
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.arm(self.waitLimit, context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.arm(self.waitLimit, context: context)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head: self.arm(self.bodyLimit, context: context)
        case .body: break
        case .end: self.disarm()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = self.unwrapOutboundIn(data) { self.arm(self.waitLimit, context: context) }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.disarm()
        context.fireChannelInactive()
    }

    private func arm(_ limit: TimeAmount, context: ChannelHandlerContext) {
        self.timer?.cancel()
        let channel = context.channel
        self.timer = context.eventLoop.scheduleTask(in: limit) { channel.close(promise: nil) }
    }

    private func disarm() {
        self.timer?.cancel()
        self.timer = nil
    }
}
