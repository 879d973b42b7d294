#if canImport(Glibc)
import Glibc
#endif

/// A `token.get` request in the simple form nearly every client sends, read without building a
/// JSON tree: `{"jsonrpc":"2.0","id":<int or plain string>,"method":"token.get","params":{"tenant":…,"region":…}}`
/// with members in any order.
///
/// Anything else — escapes, other members, duplicates, fractional or huge ids, notifications — is
/// not recognised (nil), and the general path answers it. So the fast path never accepts what the
/// general path would reject, and its reply is byte-for-byte the general path's.
struct FastTokenRequest: Equatable {
    /// Where the id lies in the line, exactly as sent; for the accepted forms it is also how the
    /// general path re-encodes it. A range, not a copy: reading a request allocates nothing.
    var id: Range<Int>
    var tenant: String
    var region: String?

    static func parse(_ bytes: UnsafeRawBufferPointer) -> FastTokenRequest? {
        var reader = Reader(bytes: bytes)
        var id: Range<Int>?
        var tenant: String?
        var region: String?
        var sawVersion = false
        var sawMethod = false
        var sawParams = false
        guard reader.consume(UInt8(ascii: "{")) else { return nil }
        repeat {
            guard let key = reader.plainStringRange(), reader.consume(UInt8(ascii: ":")) else { return nil }
            if reader.equals(key, "jsonrpc"), !sawVersion {
                guard let value = reader.plainStringRange(), reader.equals(value, "2.0") else { return nil }
                sawVersion = true
            } else if reader.equals(key, "method"), !sawMethod {
                guard let value = reader.plainStringRange(), reader.equals(value, "token.get") else { return nil }
                sawMethod = true
            } else if reader.equals(key, "id"), id == nil {
                guard let raw = reader.simpleID() else { return nil }
                id = raw
            } else if reader.equals(key, "params"), !sawParams {
                guard reader.consume(UInt8(ascii: "{")) else { return nil }
                repeat {
                    guard let name = reader.plainStringRange(), reader.consume(UInt8(ascii: ":")) else { return nil }
                    if reader.equals(name, "tenant"), tenant == nil {
                        tenant = reader.plainString()
                        guard tenant != nil else { return nil }
                    } else if reader.equals(name, "region"), region == nil {
                        region = reader.plainString()
                        guard region != nil else { return nil }
                    } else {
                        return nil
                    }
                } while reader.consume(UInt8(ascii: ","))
                guard reader.consume(UInt8(ascii: "}")) else { return nil }
                sawParams = true
            } else {
                return nil
            }
        } while reader.consume(UInt8(ascii: ","))
        guard reader.consume(UInt8(ascii: "}")), reader.atEnd, sawVersion, sawMethod, let id, let tenant, !tenant.isEmpty
        else { return nil }
        if let region, region.isEmpty { return nil }
        return FastTokenRequest(id: id, tenant: tenant, region: region)
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var index = 0

        mutating func skipSpace() {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 || bytes[index] == 0x0d || bytes[index] == 0x0a {
                index += 1
            }
        }

        mutating func consume(_ byte: UInt8) -> Bool {
            self.skipSpace()
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        var atEnd: Bool {
            mutating get {
                self.skipSpace()
                return index == bytes.count
            }
        }

        /// A string of printable ASCII with no escapes.
        mutating func plainString() -> String? {
            guard let range = self.plainStringRange() else { return nil }
            return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
        }

        func equals(_ range: Range<Int>, _ literal: StaticString) -> Bool {
            guard range.count == literal.utf8CodeUnitCount else { return false }
            return memcmp(bytes.baseAddress! + range.lowerBound, literal.utf8Start, range.count) == 0
        }

        mutating func plainStringRange() -> Range<Int>? {
            guard self.consume(UInt8(ascii: "\"")) else { return nil }
            let start = index
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    return start..<(index - 1)
                }
                guard byte >= 0x20, byte < 0x7f, byte != UInt8(ascii: "\\") else { return nil }
                index += 1
            }
            return nil
        }

        /// An id the general path would re-encode identically: a plain string, or an integer of at
        /// most 18 digits without leading zeros.
        mutating func simpleID() -> Range<Int>? {
            self.skipSpace()
            let start = index
            if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                guard self.plainStringRange() != nil else { return nil }
                return start..<index
            }
            if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
            let digitsStart = index
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
            let digits = index - digitsStart
            guard digits > 0, digits <= 18, !(digits > 1 && bytes[digitsStart] == UInt8(ascii: "0")),
                !(bytes[start] == UInt8(ascii: "-") && digits == 1 && bytes[digitsStart] == UInt8(ascii: "0"))
            else { return nil }
            if index < bytes.count, bytes[index] == UInt8(ascii: ".") || bytes[index] | 0x20 == UInt8(ascii: "e") { return nil }
            return start..<index
        }
    }
}
