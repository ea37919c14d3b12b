/// Byte planes (formats/ftqz.md, "Byte planes"): the `count` bytes of `p`-byte elements
/// rearranged as all first bytes, then all second bytes, and so on.
///
/// In floating-point weights the byte holding the sign and most of the exponent takes few
/// values, while mantissa bytes look random; separated, the exponent plane compresses far
/// better than the interleaved bytes do.
public enum BytePlanes {
    /// Splits `count` bytes (a multiple of `planes`) of `src` into planes in `dst`.
    /// `src` and `dst` must not overlap.
    public static func split(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, count: Int, planes: Int) {
        switch planes {
        case 2: split2(src, dst, count / 2)
        case 4: split4(src, dst, count / 4)
        default: dst.copyMemory(from: src, byteCount: count)
        }
    }

    /// Interleaves `count` bytes of planes in `src` back into elements in `dst`.
    public static func join(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, count: Int, planes: Int) {
        switch planes {
        case 2: join2(src, dst, count / 2)
        case 4: join4(src, dst, count / 4)
        default: dst.copyMemory(from: src, byteCount: count)
        }
    }

    // Each element is loaded as one little-endian integer and cut into bytes (or built from
    // them), which the compiler turns into vector shuffles.

    @inline(never)
    static func split2(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, _ n: Int) {
        let p0 = dst.assumingMemoryBound(to: UInt8.self), p1 = p0 + n
        for i in 0..<n {
            let v = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            p0[i] = UInt8(truncatingIfNeeded: v)
            p1[i] = UInt8(truncatingIfNeeded: v >> 8)
        }
    }

    @inline(never)
    static func split4(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, _ n: Int) {
        let p0 = dst.assumingMemoryBound(to: UInt8.self), p1 = p0 + n, p2 = p1 + n, p3 = p2 + n
        for i in 0..<n {
            let v = UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))
            p0[i] = UInt8(truncatingIfNeeded: v)
            p1[i] = UInt8(truncatingIfNeeded: v >> 8)
            p2[i] = UInt8(truncatingIfNeeded: v >> 16)
            p3[i] = UInt8(truncatingIfNeeded: v >> 24)
        }
    }

    @inline(never)
    static func join2(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, _ n: Int) {
        let p0 = src.assumingMemoryBound(to: UInt8.self), p1 = p0 + n
        for i in 0..<n {
            let v = UInt16(p0[i]) | UInt16(p1[i]) << 8
            dst.storeBytes(of: v.littleEndian, toByteOffset: 2 * i, as: UInt16.self)
        }
    }

    @inline(never)
    static func join4(_ src: UnsafeRawPointer, _ dst: UnsafeMutableRawPointer, _ n: Int) {
        let p0 = src.assumingMemoryBound(to: UInt8.self), p1 = p0 + n, p2 = p1 + n, p3 = p2 + n
        for i in 0..<n {
            let v = UInt32(p0[i]) | UInt32(p1[i]) << 8 | UInt32(p2[i]) << 16 | UInt32(p3[i]) << 24
            dst.storeBytes(of: v.littleEndian, toByteOffset: 4 * i, as: UInt32.self)
        }
    }
}
