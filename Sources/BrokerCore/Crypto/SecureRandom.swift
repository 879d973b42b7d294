import COpenSSL

/// Cryptographically secure random bytes from OpenSSL's `RAND_bytes`.
public enum SecureRandom {
    public static func bytes(_ count: Int) throws(OpenSSLError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: count)
        let status = output.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32($0.count)) }
        guard status == 1 else { throw OpenSSLError(operation: "RAND_bytes") }
        return output
    }

    /// Fills caller-owned memory, so key material never passes through a copyable Swift array.
    static func fill(_ buffer: UnsafeMutableRawBufferPointer) throws(OpenSSLError) {
        let status = RAND_bytes(buffer.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(buffer.count))
        guard status == 1 else { throw OpenSSLError(operation: "RAND_bytes") }
    }
}
