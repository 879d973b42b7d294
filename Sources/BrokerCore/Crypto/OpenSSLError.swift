/// An OpenSSL call failed.
///
/// Carries only the name of the failing operation: never key material, plaintext or ciphertext,
/// so it is always safe to log or show.
public struct OpenSSLError: Error, Sendable, CustomStringConvertible {
    public let operation: String

    public init(operation: String) {
        self.operation = operation
    }

    public var description: String { "OpenSSL \(self.operation) failed" }
}
