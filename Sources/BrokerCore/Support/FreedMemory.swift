#if canImport(Glibc)
import Glibc
#endif

/// Gives freed heap back to the OS. glibc keeps what a burst of allocations freed, per arena, for
/// reuse: after loading 100,000 tokens, or building one 20 MB `tenant.list` reply, that is tens of
/// MiB of resident memory for nothing, and each cooperative thread's arena keeps its own peak.
public enum FreedMemory {
    /// `malloc_trim` is looked up at run time: it is glibc's alone and not in the Glibc module.
    public static func release() {
        #if canImport(Glibc)
        typealias MallocTrim = @convention(c) (Int) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
        _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
        #endif
    }
}
