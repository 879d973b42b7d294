import COpenSSL

/// One version of the master key: 32 bytes in memory this object owns and cleanses on release.
///
/// The bytes live in a manually allocated buffer rather than a Swift array so no copy-on-write
/// copy of them can outlive this object.
public final class MasterKey: @unchecked Sendable {
    public static let length = AESGCM.keyLength

    /// Identifies the key version inside every sealed value.
    public let id: UInt32
    private let storage: UnsafeMutableRawBufferPointer

    /// A fresh random key from `RAND_bytes`.
    public convenience init(randomWithID id: UInt32) throws(OpenSSLError) {
        self.init(id: id)
        try SecureRandom.fill(self.storage)
    }

    /// A key decoded from the keyring file's hex text; nil when the text is not 32 bytes of hex.
    convenience init?(id: UInt32, hex: Substring) {
        guard var bytes = Hex.decode(hex) else { return nil }
        defer { bytes.wipe() }
        guard bytes.count == Self.length else { return nil }
        self.init(id: id)
        self.storage.copyBytes(from: bytes)
    }

    private init(id: UInt32) {
        self.id = id
        self.storage = .allocate(byteCount: Self.length, alignment: 16)
    }

    deinit {
        OPENSSL_cleanse(self.storage.baseAddress, self.storage.count)
        self.storage.deallocate()
    }

    func withBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try body(UnsafeRawBufferPointer(self.storage))
    }

    /// The key as hex text, for writing the keyring file only.
    var hexEncoded: String { Hex.encode(UnsafeRawBufferPointer(self.storage)) }
}
