import FTQCore

/// A fast Q4_0 quantizer, bit-identical to the reference
/// (``GGMLLegacyQuant/quantizeQ4_0(_:_:)``), with the same techniques as ``Q8_0Fast``:
/// the signed maximum is the first element whose magnitude pattern is the largest;
/// `min(15, trunc(v))` for the non-negative `v = x * id + 8.5` is computed as a float floor
/// (round to nearest even, minus one where that rounded up) clamped to 15, and read back from
/// the bits of (code + 1.5 * 2^23). Blocks with a non-finite element or a non-finite `1/d` go
/// through the reference. Tested against it in FTQKernelsTests/FastQuantTests.
enum Q4_0Fast {
    static func quantize(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableRawBufferPointer) {
        let blocks = x.count / 32
        let base = x.baseAddress!
        let ob = out.baseAddress!
        for b in 0..<blocks {
            let p = base + b * 32
            let maxBits = FastBlock.maxMagnitudeBits(p)
            let o = ob + b * 18
            // The reference keeps the first element of the largest magnitude (and +0 for an
            // all-zero block, whatever the signs of its zeros).
            var signedMax: Float = 0
            if maxBits != 0 {
                for j in 0..<32 where p[j].bitPattern & 0x7fff_ffff == maxBits { signedMax = p[j]; break }
            }
            let d = signedMax / -8
            let id: Float = d != 0 ? 1 / d : 0
            guard maxBits < 0x7f80_0000, id.isFinite else {
                GGMLLegacyQuant.quantizeQ4_0(UnsafeBufferPointer(start: p, count: 32), UnsafeMutableRawBufferPointer(start: o, count: 18))
                continue
            }
            let h = FastBlock.f16(d)
            o.storeBytes(of: h.littleEndian, as: UInt16.self)
            let q = (o + 2).assumingMemoryBound(to: UInt8.self)
            for j in 0..<16 {
                q[j] = code(p[j] * id + 8.5) | code(p[j + 16] * id + 8.5) << 4
            }
        }
    }

    /// min(15, trunc(v)) for a finite v >= 0 (and below 2^22).
    @inline(__always)
    static func code(_ v: Float) -> UInt8 {
        var f = (v + 8_388_608) - 8_388_608  // round to nearest even
        f -= (f > v) ? 1 : 0                  // floor
        f = Swift.min(f, 15)
        return UInt8(truncatingIfNeeded: (f + 12_582_912).bitPattern)
    }
}
