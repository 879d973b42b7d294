import COpenSSL

/// Comparison of secrets in time that does not depend on where they differ (OpenSSL's
/// `CRYPTO_memcmp`), so a caller cannot learn a stored digest byte by byte from how fast it is refused.
public enum ConstantTime {
    /// Whether `a` and `b` hold the same bytes. Only their lengths, which are public, may end it early.
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        guard !a.isEmpty else { return true }
        return a.withUnsafeBytes { left in
            b.withUnsafeBytes { right in CRYPTO_memcmp(left.baseAddress, right.baseAddress, left.count) == 0 }
        }
    }
}
