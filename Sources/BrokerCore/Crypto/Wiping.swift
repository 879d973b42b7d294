import COpenSSL

extension Array where Element == UInt8 {
    /// Overwrites the array's storage with zeros in a way the optimiser may not elide.
    ///
    /// Swift arrays are copy-on-write: copies made earlier (for example by a `String` conversion)
    /// are not reached by this. It narrows the window a secret sits in memory; it is no guarantee.
    public mutating func wipe() {
        self.withUnsafeMutableBytes { bytes in
            if let base = bytes.baseAddress { OPENSSL_cleanse(base, bytes.count) }
        }
    }
}
