import FTQCore

/// A fast Q8_0 quantizer, bit-identical to the reference
/// (``GGMLLegacyQuant/quantizeQ8_0(_:_:)``), written without branches or trapping conversions
/// in its inner loops so that the compiler vectorises them:
/// - the block maximum is the largest magnitude bit pattern (for finite floats, ordering the
///   patterns orders the values; a pattern at or above 0x7f800000 means a non-finite element,
///   and such a block goes through the reference);
/// - roundf(v), for |v| <= 128, is the round-to-nearest-even of |v| (by adding and
///   subtracting 2^23) moved up by one where that rounded a tie down, with v's sign;
/// - the code's low byte is read from the bits of (code + 1.5 * 2^23), as two's complement.
/// Tested against the reference in FTQKernelsTests/FastQuantTests.
enum Q8_0Fast {
    static func quantize(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableRawBufferPointer) {
        let blocks = x.count / 32
        let base = x.baseAddress!
        let ob = out.baseAddress!
        for b in 0..<blocks {
            let p = base + b * 32
            let maxBits = FastBlock.maxMagnitudeBitsSIMD(p)
            let amax = Float(bitPattern: maxBits)
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            let o = ob + b * 34
            guard maxBits < 0x7f80_0000, id.isFinite else {
                GGMLLegacyQuant.quantizeQ8_0(UnsafeBufferPointer(start: p, count: 32), UnsafeMutableRawBufferPointer(start: o, count: 34))
                continue
            }
            o.storeBytes(of: FastBlock.f16(d).littleEndian, as: UInt16.self)
            let raw = UnsafeRawPointer(p)
            let lo = codes(raw.loadUnaligned(as: SIMD16<Float>.self), id)
            let hi = codes(raw.loadUnaligned(fromByteOffset: 64, as: SIMD16<Float>.self), id)
            (o + 2).storeBytes(of: lo, as: SIMD16<UInt8>.self)
            (o + 18).storeBytes(of: hi, as: SIMD16<UInt8>.self)
        }
    }

    /// The int8 codes of 16 values: roundf(x * id) as the scalar loop computes it, per lane.
    @inline(__always)
    static func codes(_ x: SIMD16<Float>, _ id: Float) -> SIMD16<UInt8> {
        let v = x * id
        let bits = unsafeBitCast(v, to: SIMD16<UInt32>.self)
        let a = unsafeBitCast(bits & 0x7fff_ffff, to: SIMD16<Float>.self)
        var r = (a + 8_388_608) - 8_388_608
        r = r.replacing(with: r + 1, where: (r - a) .== -0.5)
        let s = unsafeBitCast(unsafeBitCast(r, to: SIMD16<UInt32>.self) | (bits & 0x8000_0000), to: SIMD16<Float>.self)
        return SIMD16<UInt8>(truncatingIfNeeded: unsafeBitCast(s + 12_582_912, to: SIMD16<UInt32>.self))
    }
}
