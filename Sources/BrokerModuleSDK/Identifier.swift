/// Validation of the names the broker accepts for tenants and regions.
public enum Identifier {
    /// A tenant id: 1–64 of `[a-z0-9_-]`.
    public static func isValidTenantID(_ text: String) -> Bool {
        Self.matches(text, maxLength: 64, extra: [UInt8(ascii: "_"), UInt8(ascii: "-")])
    }

    /// A region name: 1–32 of `[a-z0-9-]`.
    public static func isValidRegion(_ text: String) -> Bool {
        Self.matches(text, maxLength: 32, extra: [UInt8(ascii: "-")])
    }

    private static func matches(_ text: String, maxLength: Int, extra: [UInt8]) -> Bool {
        let bytes = text.utf8
        guard (1...maxLength).contains(bytes.count) else { return false }
        return bytes.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || extra.contains(byte)
        }
    }
}
