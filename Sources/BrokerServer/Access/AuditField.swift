import BrokerCore

/// How names a caller sent appear in the audit log. A caller controls them, so a name is written
/// only when it has the grammar of what it names (and so is short and needs no escaping); anything
/// else is written as `<invalid>`, never echoed. The log stays small and readable however hostile
/// the requests are.
enum AuditField {
    /// Written in place of a name that is not a valid one.
    static let invalid = "<invalid>"
    /// Tenants of a `tenants` list written by name; the rest are counted (`a,b,…,+12 more`).
    static let listedTenants = 8
    /// The longest method name written; longer ones are `<invalid>`.
    static let maximumMethodLength = 64

    /// A method name of 1–64 of `[A-Za-z0-9._-]` (every broker and module method has this form),
    /// else `<invalid>`.
    static func method(_ text: String) -> String {
        let bytes = text.utf8
        guard (1...Self.maximumMethodLength).contains(bytes.count), bytes.allSatisfy(Self.isMethodByte) else { return Self.invalid }
        return text
    }

    /// The tenants a request names: ids (or `*`) joined by commas, at most `listedTenants` of them
    /// by name; `<invalid>` when any of them is not a tenant id.
    static func tenants(_ list: [String]) -> String {
        guard list.allSatisfy({ $0 == "*" || Identifier.isValidTenantID($0) }) else { return Self.invalid }
        guard list.count > Self.listedTenants else { return list.joined(separator: ",") }
        return list.prefix(Self.listedTenants).joined(separator: ",") + ",+\(list.count - Self.listedTenants) more"
    }

    /// A region name (1–32 of `[a-z0-9-]`), else `<invalid>`.
    static func region(_ text: String) -> String {
        Identifier.isValidRegion(text) ? text : Self.invalid
    }

    private static func isMethodByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }
}
