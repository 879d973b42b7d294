import BrokerCore
import NIOCore

/// The `token.get` reply line built from pre-encoded fragments. It must equal, byte for byte, what the
/// general path produces (`RPCResponse.line` of `BrokerMethods.tokenResult`: sorted keys, same numbers).
enum FastTokenReply {
    /// `{"id":` + id + head + expires_in + tail, where head and tail are fixed per token:
    /// head = `,"jsonrpc":"2.0","result":{"expires_at":E,"expires_in":`,
    /// tail = `,"region":"R","tenant":"T","token":"V"}}\n`.
    static func fragments(key: TokenKey, token: LiveToken) -> ServingFragments {
        var head = Array(#","jsonrpc":"2.0","result":{"expires_at":"#.utf8)
        head.append(contentsOf: String(token.expiresAtUnix).utf8)
        head.append(contentsOf: #","expires_in":"#.utf8)
        var tail = Array(#","region":"#.utf8)
        JSONWriter.writeString(key.region, into: &tail)
        tail.append(contentsOf: #","tenant":"#.utf8)
        JSONWriter.writeString(key.tenant, into: &tail)
        tail.append(contentsOf: #","token":"#.utf8)
        JSONWriter.writeString(token.value, into: &tail)
        tail.append(contentsOf: "}}\n".utf8)
        return ServingFragments(head: head, tail: tail)
    }

    static func write(id: ArraySlice<UInt8>, fragments: ServingFragments, expiresIn: Int64, into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"{"id":"#)
        buffer.writeBytes(id)
        buffer.writeBytes(fragments.head)
        buffer.writeString(String(expiresIn))
        buffer.writeBytes(fragments.tail)
    }
}
