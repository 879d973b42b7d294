import COpenSSL

/// SHA-256 through OpenSSL's EVP interface: client keys are stored as the SHA-256 of their secret.
public enum SHA256 {
    /// The length of a digest in bytes.
    public static let byteCount = 32

    public static func digest(_ bytes: [UInt8]) -> [UInt8] {
        EVPDigest.digest(bytes, algorithm: EVP_sha256(), name: "SHA-256")
    }
}
