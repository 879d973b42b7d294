import COpenSSL

/// One-shot message digests through OpenSSL's EVP interface: what `MD5` and `SHA256` share.
enum EVPDigest {
    /// The digest of `bytes` with `algorithm` (`EVP_md5()`, `EVP_sha256()`), named `name` in the trap
    /// a missing algorithm causes.
    static func digest(_ bytes: [UInt8], algorithm: OpaquePointer?, name: StaticString) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let status = bytes.withUnsafeBytes { input in
            digest.withUnsafeMutableBufferPointer { output in
                EVP_Digest(input.baseAddress, input.count, output.baseAddress, &length, algorithm, nil)
            }
        }
        // EVP_Digest only fails when the digest is unavailable or memory runs out; both are fatal misconfiguration.
        precondition(status == 1, "OpenSSL's \(name) digest is unavailable")
        return Array(digest.prefix(Int(length)))
    }
}
