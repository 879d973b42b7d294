/// Names the database row a secret belongs to. Sealing binds the ciphertext to it (as AAD),
/// so a sealed value copied into another row, or another field, fails to open.
public struct SecretBinding: Sendable, Hashable {
    public var tenant: String
    public var region: String
    public var field: Field

    public enum Field: String, Sendable {
        case appKey = "app_key"
        case token = "token"
    }

    public init(tenant: String, region: String, field: Field) {
        self.tenant = tenant
        self.region = region
        self.field = field
    }

    var associatedData: [UInt8] {
        // Tenant ids and region names cannot hold NUL, so the encoding is unambiguous.
        Array("sobot-broker\u{0}\(self.tenant)\u{0}\(self.region)\u{0}\(self.field.rawValue)".utf8)
    }
}

/// Why a sealed secret could not be opened. Never carries the secret or key bytes.
public enum SealingError: Error, Sendable, Equatable, CustomStringConvertible {
    case malformed
    case unsupportedFormat(UInt8)
    case unknownKey(UInt32)
    case authenticationFailed
    case crypto(String)

    public var description: String {
        switch self {
        case .malformed: "sealed secret is truncated or malformed"
        case .unsupportedFormat(let version): "sealed secret has unsupported format version \(version)"
        case .unknownKey(let id): "sealed secret needs master key version \(id), which the keyring does not hold"
        case .authenticationFailed: "sealed secret failed authentication (tampered, or moved to another row)"
        case .crypto(let what): what
        }
    }
}

/// Seals and opens secrets with AES-256-GCM under the keyring's master keys.
///
/// Layout: format version (1 byte) ‖ key id (4 bytes, big endian) ‖ nonce (12 random bytes) ‖
/// ciphertext ‖ tag (16 bytes). The AAD is that 5-byte header plus the row binding.
public struct SecretSealer: Sendable {
    static let formatVersion: UInt8 = 1
    static let headerLength = 5
    static let overhead = Self.headerLength + AESGCM.nonceLength + AESGCM.tagLength

    public let keyring: MasterKeyring
    /// The version new secrets are sealed with: the keyring's newest, unless a cluster records another.
    private let sealingKey: MasterKey

    public init(keyring: MasterKeyring) {
        self.keyring = keyring
        self.sealingKey = keyring.active
    }

    /// A sealer that seals with version `sealingKeyID` of `keyring`: in a cluster, the version every
    /// broker holds, which may be older than a version just added to this host's key file.
    public init(keyring: MasterKeyring, sealingKeyID: UInt32) throws(SealingError) {
        guard let key = keyring.key(id: sealingKeyID) else { throw .unknownKey(sealingKeyID) }
        self.keyring = keyring
        self.sealingKey = key
    }

    public var sealingKeyID: UInt32 { self.sealingKey.id }

    public func seal(_ plaintext: [UInt8], for binding: SecretBinding) throws(SealingError) -> [UInt8] {
        let key = self.sealingKey
        var header: [UInt8] = [Self.formatVersion]
        withUnsafeBytes(of: key.id.bigEndian) { header.append(contentsOf: $0) }
        do {
            let nonce = try SecureRandom.bytes(AESGCM.nonceLength)
            let body = try key.withBytes { keyBytes in
                try AESGCM.seal(plaintext, key: keyBytes, nonce: nonce, aad: header + binding.associatedData)
            }
            return header + nonce + body
        } catch {
            throw .crypto(String(describing: error))
        }
    }

    public func seal(_ plaintext: String, for binding: SecretBinding) throws(SealingError) -> [UInt8] {
        var bytes = Array(plaintext.utf8)
        defer { bytes.wipe() }
        return try self.seal(bytes, for: binding)
    }

    public func open(_ sealed: [UInt8], for binding: SecretBinding) throws(SealingError) -> [UInt8] {
        guard sealed.count >= Self.overhead else { throw .malformed }
        guard sealed[0] == Self.formatVersion else { throw .unsupportedFormat(sealed[0]) }
        let keyID = sealed[1..<5].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard let key = self.keyring.key(id: keyID) else { throw .unknownKey(keyID) }
        let header = Array(sealed[0..<Self.headerLength])
        let nonceEnd = Self.headerLength + AESGCM.nonceLength
        let opened: [UInt8]?
        do {
            opened = try key.withBytes { keyBytes in
                try AESGCM.open(
                    sealed[nonceEnd...],
                    key: keyBytes,
                    nonce: sealed[Self.headerLength..<nonceEnd],
                    aad: header + binding.associatedData
                )
            }
        } catch {
            throw .crypto(String(describing: error))
        }
        guard let plaintext = opened else { throw .authenticationFailed }
        return plaintext
    }

    public func openString(_ sealed: [UInt8], for binding: SecretBinding) throws(SealingError) -> String {
        var bytes = try self.open(sealed, for: binding)
        defer { bytes.wipe() }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The key version a sealed value was made with, without opening it.
    public static func keyID(of sealed: [UInt8]) -> UInt32? {
        guard sealed.count >= Self.overhead else { return nil }
        return sealed[1..<5].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }
}
