/// Conversions between F64, F32, F16 and BF16 bit patterns, bit-identical to numpy and
/// ml_dtypes (formats/dtypes.md, "Conversions"). Every function is pure bit manipulation
/// so that results do not depend on the CPU's F16C support or the compiler.
public enum FloatBits {
    // MARK: widening (exact)

    /// F16 -> F32, exact; a NaN keeps its payload (numpy `npy_halfbits_to_floatbits`).
    @inlinable
    public static func f16ToF32(_ h: UInt16) -> UInt32 {
        let sign = UInt32(h & 0x8000) << 16
        let exp = UInt32(h >> 10) & 0x1f
        let mant = UInt32(h & 0x03ff)
        if exp == 0 {
            if mant == 0 { return sign }
            // Subnormal: normalise.
            var m = mant
            var e: UInt32 = 113  // 127 - 15 + 1
            while m & 0x400 == 0 { m <<= 1; e -= 1 }
            return sign | (e << 23) | ((m & 0x3ff) << 13)
        }
        if exp == 0x1f { return sign | 0x7f80_0000 | (mant << 13) }
        return sign | ((exp + 112) << 23) | (mant << 13)
    }

    /// F16 -> F64, exact; a NaN keeps its payload (numpy `npy_halfbits_to_doublebits`).
    @inlinable
    public static func f16ToF64(_ h: UInt16) -> UInt64 {
        let sign = UInt64(h & 0x8000) << 48
        let exp = UInt64(h >> 10) & 0x1f
        let mant = UInt64(h & 0x03ff)
        if exp == 0 {
            if mant == 0 { return sign }
            var m = mant
            var e: UInt64 = 1009  // 1023 - 15 + 1
            while m & 0x400 == 0 { m <<= 1; e -= 1 }
            return sign | (e << 52) | ((m & 0x3ff) << 42)
        }
        if exp == 0x1f { return sign | 0x7ff0_0000_0000_0000 | (mant << 42) }
        return sign | ((exp + 1008) << 52) | (mant << 42)
    }

    /// BF16 -> F32, exact (a 16-bit shift).
    @inlinable
    public static func bf16ToF32(_ b: UInt16) -> UInt32 { UInt32(b) << 16 }

    // MARK: narrowing (round to nearest, ties to even)

    /// F32 -> F16 as numpy does it (`npy_floatbits_to_halfbits`): round to nearest even,
    /// overflow to infinity, a NaN keeps the top 10 bits of its payload (and stays a NaN).
    @inlinable
    public static func f32ToF16(_ f: UInt32) -> UInt16 {
        let sign = UInt16((f >> 16) & 0x8000)
        let fexp = f & 0x7f80_0000
        let fsig = f & 0x007f_ffff
        if fexp >= 0x7f80_0000 {
            if fsig == 0 { return sign | 0x7c00 }
            var r = UInt16(0x7c00 + (fsig >> 13))
            if r == 0x7c00 { r += 1 }
            return sign | r
        }
        if fexp >= 0x4780_0000 { return sign | 0x7c00 }  // >= 2^16: overflow
        if fexp <= 0x3800_0000 {
            // Subnormal or zero in half precision.
            if fexp < 0x3300_0000 { return sign }  // below half the smallest subnormal
            let e = fexp >> 23
            var sig = 0x0080_0000 | fsig
            // Shift so that the result has 10 bits of subnormal mantissa.
            let s = 126 - e  // e in 102...112 (2^-25 ... 2^-15): shift 24 ... 14
            // Round to nearest even on the bits shifted out.
            let rem = sig & ((1 << s) - 1)
            let half: UInt32 = 1 << (s - 1)
            sig >>= s
            if rem > half || (rem == half && (sig & 1) == 1) { sig += 1 }
            return sign | UInt16(sig)
        }
        var h = UInt32((fexp - 0x3800_0000) >> 13) | (fsig >> 13)
        let rem = fsig & 0x1fff
        if rem > 0x1000 || (rem == 0x1000 && (h & 1) == 1) { h += 1 }  // may carry into exponent/inf: correct
        return sign | UInt16(h)
    }

    /// F64 -> F16 directly (one rounding, as numpy's `npy_doublebits_to_halfbits`).
    @inlinable
    public static func f64ToF16(_ d: UInt64) -> UInt16 {
        let sign = UInt16((d >> 48) & 0x8000)
        let dexp = d & 0x7ff0_0000_0000_0000
        let dsig = d & 0x000f_ffff_ffff_ffff
        if dexp >= 0x7ff0_0000_0000_0000 {
            if dsig == 0 { return sign | 0x7c00 }
            var r = UInt16(0x7c00 + (dsig >> 42))
            if r == 0x7c00 { r += 1 }
            return sign | r
        }
        if dexp >= 0x40f0_0000_0000_0000 { return sign | 0x7c00 }
        if dexp <= 0x3f00_0000_0000_0000 {
            if dexp < 0x3e60_0000_0000_0000 { return sign }
            let e = dexp >> 52
            var sig = 0x0010_0000_0000_0000 | dsig
            let s = 1051 - e  // e in 998...1008 (2^-25 ... 2^-15): shift 53 ... 43
            let rem = sig & ((1 << s) - 1)
            let half: UInt64 = 1 << (s - 1)
            sig >>= s
            if rem > half || (rem == half && (sig & 1) == 1) { sig += 1 }
            return sign | UInt16(sig)
        }
        var h = UInt64((dexp - 0x3f00_0000_0000_0000) >> 42) | (dsig >> 42)
        let rem = dsig & 0x3ff_ffff_ffff
        let half: UInt64 = 0x200_0000_0000
        if rem > half || (rem == half && (h & 1) == 1) { h += 1 }
        return sign | UInt16(h)
    }

    /// F32 -> BF16 as ml_dtypes does it: round to nearest even; a NaN becomes the quiet NaN
    /// 0x7fc0 with its sign.
    @inlinable
    public static func f32ToBF16(_ f: UInt32) -> UInt16 {
        if (f & 0x7fff_ffff) > 0x7f80_0000 { return UInt16(f >> 16) & 0x8000 | 0x7fc0 }
        let lsb = (f >> 16) & 1
        return UInt16((f &+ 0x7fff &+ lsb) >> 16)
    }

    /// F64 -> F32 (IEEE round to nearest even; what a C cast does on x86-64 and ARM64).
    @inlinable
    public static func f64ToF32(_ d: UInt64) -> UInt32 {
        Float(Double(bitPattern: d)).bitPattern
    }

    /// F32 -> F64 (exact; a C cast, which quiets a signalling NaN).
    @inlinable
    public static func f32ToF64(_ f: UInt32) -> UInt64 {
        Double(Float(bitPattern: f)).bitPattern
    }
}
