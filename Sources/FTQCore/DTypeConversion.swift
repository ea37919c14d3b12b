

/// Element-wise conversion between F64, F32, F16 and BF16 buffers (formats/dtypes.md).
public enum DTypeConversion {
    /// Converts `count` elements from `src` (of `from`) into `dst` (of `to`).
    /// Both must be one of F64, F32, F16, BF16; `from == to` copies.
    public static func convert(from: DType, to: DType, count: Int,
                               src: UnsafeRawBufferPointer, dst: UnsafeMutableRawBufferPointer) {
        precondition(from.isConvertibleFloat && to.isConvertibleFloat)
        precondition(src.count >= count * from.bits / 8 && dst.count >= count * to.bits / 8)
        if from == to {
            dst.baseAddress!.copyMemory(from: src.baseAddress!, byteCount: count * from.bits / 8)
            return
        }
        switch (from, to) {
        case (.F32, .F16): FastConversion.f32ToF16(src, dst, count)
        case (.F32, .BF16): FastConversion.f32ToBF16(src, dst, count)
        case (.F32, .F64): map(src, dst, count, UInt32.self, UInt64.self) { FloatBits.f32ToF64($0) }
        case (.F16, .F32): map(src, dst, count, UInt16.self, UInt32.self) { FloatBits.f16ToF32($0) }
        case (.F16, .F64): map(src, dst, count, UInt16.self, UInt64.self) { FloatBits.f16ToF64($0) }
        case (.F16, .BF16): map(src, dst, count, UInt16.self, UInt16.self) { FloatBits.f16ToBF16($0) }
        case (.BF16, .F32): FastConversion.bf16ToF32(src, dst, count)
        case (.BF16, .F64): map(src, dst, count, UInt16.self, UInt64.self) { FloatBits.bf16ToF64($0) }
        case (.BF16, .F16): map(src, dst, count, UInt16.self, UInt16.self) { FloatBits.bf16ToF16($0) }
        case (.F64, .F32): map(src, dst, count, UInt64.self, UInt32.self) { FloatBits.f64ToF32($0) }
        case (.F64, .F16): map(src, dst, count, UInt64.self, UInt16.self) { FloatBits.f64ToF16($0) }
        case (.F64, .BF16): map(src, dst, count, UInt64.self, UInt16.self) { FloatBits.f64ToBF16($0) }
        default: preconditionFailure("unreachable")
        }
    }

    @inline(__always)
    static func map<S: FixedWidthInteger, D: FixedWidthInteger>(
        _ src: UnsafeRawBufferPointer, _ dst: UnsafeMutableRawBufferPointer, _ count: Int,
        _: S.Type, _: D.Type, _ f: (S) -> D
    ) {
        // Little-endian hosts only (x86-64, ARM64); the files are little-endian too.
        let s = src.baseAddress!.assumingMemoryBound(to: S.self)
        let d = dst.baseAddress!.assumingMemoryBound(to: D.self)
        for k in 0..<count { d[k] = f(s[k]) }
    }
}

extension FloatBits {
    /// F16 -> BF16: exact widening then round to nearest even; a NaN becomes 0x7fc0 with its sign (ml_dtypes).
    @inlinable public static func f16ToBF16(_ h: UInt16) -> UInt16 { f32ToBF16(f16ToF32(h)) }
    /// BF16 -> F16: round to nearest even; a NaN becomes 0x7e00 with its sign (ml_dtypes).
    @inlinable public static func bf16ToF16(_ b: UInt16) -> UInt16 {
        if (b & 0x7fff) > 0x7f80 { return (b & 0x8000) | 0x7e00 }
        return f32ToF16(bf16ToF32(b))
    }
    /// BF16 -> F64: exact (through F32, as ml_dtypes does).
    @inlinable public static func bf16ToF64(_ b: UInt16) -> UInt64 { f32ToF64(bf16ToF32(b)) }
    /// F64 -> BF16: through F32 (two roundings, as ml_dtypes does).
    @inlinable public static func f64ToBF16(_ d: UInt64) -> UInt16 { f32ToBF16(f64ToF32(d)) }
}
