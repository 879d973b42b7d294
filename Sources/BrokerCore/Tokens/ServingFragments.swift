/// Bytes a server precomputes for each cached token, around the one part that changes per request
/// (so serving costs two copies, not an encoding). Opaque to the token engine.
///
/// One object holds the counts and then the bytes: serving a token touches one allocation, whose
/// first cache line the reference count, the counts and the start of the bytes share.
public struct ServingFragments: @unchecked Sendable {  // Immutable once `init` returns.
    private struct Counts {
        var head: Int
        var total: Int
    }

    private let storage: ManagedBuffer<Counts, UInt8>

    public init(head: [UInt8], tail: [UInt8]) {
        let total = head.count + tail.count
        self.storage = .create(minimumCapacity: total) { _ in Counts(head: head.count, total: total) }
        self.storage.withUnsafeMutablePointerToElements { bytes in
            var next = bytes
            for part in [head, tail] {
                part.withUnsafeBufferPointer { part in
                    if let base = part.baseAddress { next.initialize(from: base, count: part.count) }
                }
                next += part.count
            }
        }
    }

    /// Lends the head and tail bytes without copying them. Not generic: called across modules on the
    /// hot path, a generic would be looked up at run time rather than specialised.
    public func withHeadAndTail(_ body: (_ head: UnsafeRawBufferPointer, _ tail: UnsafeRawBufferPointer) -> Void) {
        self.storage.withUnsafeMutablePointers { counts, bytes in
            let head = counts.pointee.head
            body(
                UnsafeRawBufferPointer(start: bytes, count: head),
                UnsafeRawBufferPointer(start: bytes + head, count: counts.pointee.total - head)
            )
        }
    }

    public var count: Int { self.storage.header.total }
}
