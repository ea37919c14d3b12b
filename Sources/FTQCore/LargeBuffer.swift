#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Scratch buffers of a megabyte or more (read and write windows, hash queues, packed data):
/// anonymous memory mapped on its own, asking Linux for 2 MiB pages (MADV_HUGEPAGE), so that
/// first touching a buffer costs one page fault per 2 MiB rather than one per 4 KiB (a 90 MB
/// quantization otherwise spends a tenth of its time in page faults). Where the kernel has no
/// huge page to give, it silently uses small ones. Smaller buffers come from the allocator.
public enum LargeBuffer {
    static let threshold = 1 << 20
    static let hugePage = 2 << 20

    /// `byteCount` bytes, aligned to 64 bytes at least; free with ``deallocate(_:)``.
    public static func allocate(byteCount: Int) -> UnsafeMutableRawBufferPointer {
        guard byteCount >= threshold else { return .allocate(byteCount: max(byteCount, 1), alignment: 64) }
        let size = rounded(byteCount)
        // Map a huge page more than needed and trim both ends, so the buffer starts on a 2 MiB
        // boundary (huge pages need one).
        guard let raw = mmap(nil, size + hugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              raw != MAP_FAILED else {
            fatalError("out of memory: cannot map \(byteCount) bytes")
        }
        let start = UInt(bitPattern: raw)
        let aligned = (start + UInt(hugePage - 1)) & ~UInt(hugePage - 1)
        if aligned > start { munmap(raw, Int(aligned - start)) }
        let end = start + UInt(size + hugePage), alignedEnd = aligned + UInt(size)
        if end > alignedEnd { munmap(UnsafeMutableRawPointer(bitPattern: alignedEnd), Int(end - alignedEnd)) }
        let base = UnsafeMutableRawPointer(bitPattern: aligned)!
        #if os(Linux)
        _ = madvise(base, size, 14 /* MADV_HUGEPAGE */)
        #endif
        return UnsafeMutableRawBufferPointer(start: base, count: byteCount)
    }

    /// Frees a buffer from ``allocate(byteCount:)``.
    public static func deallocate(_ buffer: UnsafeMutableRawBufferPointer) {
        guard buffer.count >= threshold else { return buffer.deallocate() }
        munmap(buffer.baseAddress, rounded(buffer.count))
    }

    static func rounded(_ n: Int) -> Int { (n + hugePage - 1) / hugePage * hugePage }
}
