import BrokerCore

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

    /// Appends the reply for a request whose id is `id` (its bytes exactly as sent).
    static func write(id: some Collection<UInt8>, fragments: ServingFragments, expiresIn: Int64, into buffer: inout [UInt8]) {
        fragments.withHeadAndTail { head, tail in
            buffer.append(contentsOf: #"{"id":"#.utf8)
            buffer.append(contentsOf: id)
            buffer.append(contentsOf: head)
            Self.appendDecimal(expiresIn, to: &buffer)
            buffer.append(contentsOf: tail)
        }
    }

    /// `String(value).utf8` without building the String: this runs once per served token.
    static func appendDecimal(_ value: Int64, to buffer: inout [UInt8]) {
        if value < 0 { buffer.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        // 24 bytes hold UInt64.max's 20 digits.
        var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &scratch) { digits in
            var start = digits.count
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            } while magnitude > 0
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: digits[start...]))
        }
    }
}
