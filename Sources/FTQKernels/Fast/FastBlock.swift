import FTQCore

/// Pieces the fast block quantizers share.
enum FastBlock {
    /// The largest magnitude bit pattern of a 32-element block. For finite floats, ordering the
    /// patterns orders the magnitudes; a result at or above 0x7f800000 means the block holds an
    /// infinity or a NaN (and goes through the reference).
    @inline(__always)
    static func maxMagnitudeBits(_ p: UnsafePointer<Float>) -> UInt32 {
        var m: UInt32 = 0
        for j in 0..<32 { m = Swift.max(m, p[j].bitPattern & 0x7fff_ffff) }
        return m
    }

    /// The largest magnitude bit pattern of a 32-element block, with 16-lane vectors.
    @inline(__always)
    static func maxMagnitudeBitsSIMD(_ p: UnsafePointer<Float>) -> UInt32 {
        let raw = UnsafeRawPointer(p)
        let a = raw.loadUnaligned(as: SIMD16<UInt32>.self) & 0x7fff_ffff
        let b = raw.loadUnaligned(fromByteOffset: 64, as: SIMD16<UInt32>.self) & 0x7fff_ffff
        return a.replacing(with: b, where: b .> a).max()
    }

    /// FloatBits.f32ToF16 (round to nearest even), with a short path for values whose float16
    /// is normal: the mantissa is rounded in the float32 bits and the exponent rebiased.
    @inline(__always)
    static func f16(_ f: Float) -> UInt16 {
        #if FTQ_AVX2
        // AVX2 builds have F16C: one instruction, the same IEEE rounding for every finite value
        // and infinity (NaNs keep the bit-level rule).
        if !f.isNaN { return Float16(f).bitPattern }
        #endif
        let bits = f.bitPattern
        let mag = bits & 0x7fff_ffff
        // [2^-14, 65504]: normal float16 results that cannot round up to infinity.
        guard mag >= 0x3880_0000 && mag <= 0x477f_e000 else { return FloatBits.f32ToF16(bits) }
        let rounded = (mag + 0x0fff + ((mag >> 13) & 1)) >> 13
        return UInt16(truncatingIfNeeded: rounded - (112 << 10)) | UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
    }
}
