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
            let maxBits = FastBlock.maxMagnitudeBits(p)
            let amax = Float(bitPattern: maxBits)
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            let o = ob + b * 34
            guard maxBits < 0x7f80_0000, id.isFinite else {
                GGMLLegacyQuant.quantizeQ8_0(UnsafeBufferPointer(start: p, count: 32), UnsafeMutableRawBufferPointer(start: o, count: 34))
                continue
            }
            let h = FloatBits.f32ToF16(d.bitPattern)
            o.storeBytes(of: h.littleEndian, as: UInt16.self)
            let q = (o + 2).assumingMemoryBound(to: UInt8.self)
            for j in 0..<32 {
                let v = p[j] * id
                let a = Float(bitPattern: v.bitPattern & 0x7fff_ffff)
                var r = (a + 8_388_608) - 8_388_608  // round to nearest, ties to even
                r += (r - a == -0.5) ? 1 : 0          // ties away from zero, as roundf
                let s = Float(bitPattern: r.bitPattern | (v.bitPattern & 0x8000_0000))
                q[j] = UInt8(truncatingIfNeeded: (s + 12_582_912).bitPattern)
            }
        }
    }
}
