/// Vectorised versions of the common conversions, bit-identical to the scalar reference in
/// ``FloatBits`` (the specification): eight lanes at a time on the values every lane of which
/// is in the easy range, the scalar reference for any group of eight holding a zero, a
/// subnormal, an infinity, a NaN or a value that underflows. Tested against the reference in
/// FTQCoreTests/FastConversionTests.
enum FastConversion {
    typealias U32x8 = SIMD8<UInt32>

    @inline(__always)
    static func load8(_ p: UnsafePointer<UInt32>) -> U32x8 {
        UnsafeRawPointer(p).loadUnaligned(as: U32x8.self)
    }

    /// F32 -> F16 (numpy's rounding). Fast lanes: |x| in [2^-14, 2^16), which become normal
    /// halves or, rounding up at the top, infinity (as the reference does).
    static func f32ToF16(_ src: UnsafeRawBufferPointer, _ dst: UnsafeMutableRawBufferPointer, _ count: Int) {
        let s = src.baseAddress!.assumingMemoryBound(to: UInt32.self)
        let d = dst.baseAddress!.assumingMemoryBound(to: UInt16.self)
        var k = 0
        while k + 8 <= count {
            let f = load8(s + k)
            let bits = f & 0x7fff_ffff
            let inRange = (bits .>= U32x8(repeating: 0x3880_0000)) .& (bits .< U32x8(repeating: 0x4780_0000))
            if all(inRange) {
                let rounded = bits &+ 0x0fff &+ ((bits &>> 13) & 1)
                let h = ((rounded &>> 13) &- U32x8(repeating: 112 << 10)) | ((f &>> 16) & 0x8000)
                for j in 0..<8 { d[k + j] = UInt16(truncatingIfNeeded: h[j]) }
            } else {
                for j in 0..<8 { d[k + j] = FloatBits.f32ToF16(s[k + j]) }
            }
            k += 8
        }
        while k < count { d[k] = FloatBits.f32ToF16(s[k]); k += 1 }
    }

    /// F32 -> BF16 (ml_dtypes' rounding). Fast lanes: anything but a NaN.
    static func f32ToBF16(_ src: UnsafeRawBufferPointer, _ dst: UnsafeMutableRawBufferPointer, _ count: Int) {
        let s = src.baseAddress!.assumingMemoryBound(to: UInt32.self)
        let d = dst.baseAddress!.assumingMemoryBound(to: UInt16.self)
        var k = 0
        while k + 8 <= count {
            let f = load8(s + k)
            if all((f & 0x7fff_ffff) .<= U32x8(repeating: 0x7f80_0000)) {
                let r = (f &+ 0x7fff &+ ((f &>> 16) & 1)) &>> 16
                for j in 0..<8 { d[k + j] = UInt16(truncatingIfNeeded: r[j]) }
            } else {
                for j in 0..<8 { d[k + j] = FloatBits.f32ToBF16(s[k + j]) }
            }
            k += 8
        }
        while k < count { d[k] = FloatBits.f32ToBF16(s[k]); k += 1 }
    }

    /// BF16 -> F32: a 16-bit shift, exact for every pattern.
    static func bf16ToF32(_ src: UnsafeRawBufferPointer, _ dst: UnsafeMutableRawBufferPointer, _ count: Int) {
        let s = src.baseAddress!.assumingMemoryBound(to: UInt16.self)
        let d = dst.baseAddress!.assumingMemoryBound(to: UInt32.self)
        for k in 0..<count { d[k] = UInt32(s[k]) << 16 }
    }
}
