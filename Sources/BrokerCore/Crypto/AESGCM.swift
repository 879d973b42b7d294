import COpenSSL

/// AES-256-GCM through OpenSSL EVP: the one cipher every sealed secret uses.
enum AESGCM {
    static let keyLength = 32
    static let nonceLength = 12
    static let tagLength = 16

    /// Encrypts `plaintext`, authenticating `aad` with it. Returns ciphertext followed by the tag.
    static func seal(
        _ plaintext: [UInt8],
        key: UnsafeRawBufferPointer,
        nonce: [UInt8],
        aad: [UInt8]
    ) throws(OpenSSLError) -> [UInt8] {
        precondition(key.count == Self.keyLength && nonce.count == Self.nonceLength)
        let context = try CipherContext()
        var output = [UInt8](repeating: 0, count: plaintext.count + Self.tagLength)
        var written: Int32 = 0
        var finalWritten: Int32 = 0
        let ok = output.withUnsafeMutableBufferPointer { out -> Bool in
            let keyBytes = key.baseAddress!.assumingMemoryBound(to: UInt8.self)
            guard EVP_EncryptInit_ex(context.pointer, EVP_aes_256_gcm(), nil, nil, nil) == 1,
                EVP_CIPHER_CTX_ctrl(context.pointer, EVP_CTRL_GCM_SET_IVLEN, Int32(Self.nonceLength), nil) == 1,
                EVP_EncryptInit_ex(context.pointer, nil, nil, keyBytes, nonce) == 1,
                aad.isEmpty || EVP_EncryptUpdate(context.pointer, nil, &written, aad, Int32(aad.count)) == 1
            else { return false }
            written = 0
            if !plaintext.isEmpty {
                guard EVP_EncryptUpdate(context.pointer, out.baseAddress, &written, plaintext, Int32(plaintext.count)) == 1
                else { return false }
            }
            guard EVP_EncryptFinal_ex(context.pointer, out.baseAddress! + Int(written), &finalWritten) == 1 else {
                return false
            }
            let tag = out.baseAddress! + plaintext.count
            return EVP_CIPHER_CTX_ctrl(context.pointer, EVP_CTRL_GCM_GET_TAG, Int32(Self.tagLength), tag) == 1
        }
        guard ok, Int(written + finalWritten) == plaintext.count else { throw OpenSSLError(operation: "AES-GCM seal") }
        return output
    }

    /// Decrypts and verifies ciphertext-then-tag; nil when authentication fails (tampering, wrong key or AAD).
    static func open(
        _ sealed: ArraySlice<UInt8>,
        key: UnsafeRawBufferPointer,
        nonce: ArraySlice<UInt8>,
        aad: [UInt8]
    ) throws(OpenSSLError) -> [UInt8]? {
        precondition(key.count == Self.keyLength && nonce.count == Self.nonceLength)
        guard sealed.count >= Self.tagLength else { return nil }
        let context = try CipherContext()
        let ciphertext = Array(sealed.dropLast(Self.tagLength))
        var tag = Array(sealed.suffix(Self.tagLength))
        let nonce = Array(nonce)
        var plaintext = [UInt8](repeating: 0, count: ciphertext.count + Self.tagLength)
        var written: Int32 = 0
        var finalWritten: Int32 = 0
        let setUp = plaintext.withUnsafeMutableBufferPointer { out -> Bool in
            let keyBytes = key.baseAddress!.assumingMemoryBound(to: UInt8.self)
            guard EVP_DecryptInit_ex(context.pointer, EVP_aes_256_gcm(), nil, nil, nil) == 1,
                EVP_CIPHER_CTX_ctrl(context.pointer, EVP_CTRL_GCM_SET_IVLEN, Int32(Self.nonceLength), nil) == 1,
                EVP_DecryptInit_ex(context.pointer, nil, nil, keyBytes, nonce) == 1,
                aad.isEmpty || EVP_DecryptUpdate(context.pointer, nil, &written, aad, Int32(aad.count)) == 1
            else { return false }
            written = 0
            if !ciphertext.isEmpty {
                guard EVP_DecryptUpdate(context.pointer, out.baseAddress, &written, ciphertext, Int32(ciphertext.count)) == 1
                else { return false }
            }
            return EVP_CIPHER_CTX_ctrl(context.pointer, EVP_CTRL_GCM_SET_TAG, Int32(Self.tagLength), &tag) == 1
        }
        guard setUp else { throw OpenSSLError(operation: "AES-GCM open") }
        let verified = plaintext.withUnsafeMutableBufferPointer { out in
            EVP_DecryptFinal_ex(context.pointer, out.baseAddress! + Int(written), &finalWritten) == 1
        }
        guard verified else {
            plaintext.wipe()
            return nil
        }
        plaintext.removeLast(plaintext.count - Int(written + finalWritten))
        return plaintext
    }
}

/// Owns one `EVP_CIPHER_CTX` and frees it (which also cleanses its key schedule) on every path.
private final class CipherContext {
    let pointer: OpaquePointer

    init() throws(OpenSSLError) {
        guard let pointer = EVP_CIPHER_CTX_new() else { throw OpenSSLError(operation: "EVP_CIPHER_CTX_new") }
        self.pointer = pointer
    }

    deinit { EVP_CIPHER_CTX_free(self.pointer) }
}
