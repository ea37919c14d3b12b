import FTQCore

/// A fast Q4_1 quantizer, bit-identical to the reference
/// (``GGMLLegacyQuant/quantizeQ4_1(_:_:)``): the minimum and maximum are the reference's own
/// loop (it decides the sign of a zero minimum); the codes use ``Q4_0Fast/code(_:)`` on the
/// non-negative `(x - min) * id + 0.5`. Blocks with a non-finite element, range or `1/d` go
/// through the reference. Tested against it in FTQKernelsTests/FastQuantTests.
enum Q4_1Fast {
    static func quantize(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableRawBufferPointer) {
        let blocks = x.count / 32
        let base = x.baseAddress!
        let ob = out.baseAddress!
        for b in 0..<blocks {
            let p = base + b * 32
            let block = UnsafeBufferPointer(start: p, count: 32)
            let o = ob + b * 20
            let maxBits = FastBlock.maxMagnitudeBits(p)
            let (lo, hi) = GGMLLegacyQuant.minMax(block)
            let d = (hi - lo) / 15
            let id: Float = d != 0 ? 1 / d : 0
            guard maxBits < 0x7f80_0000, d.isFinite, id.isFinite else {
                GGMLLegacyQuant.quantizeQ4_1(block, UnsafeMutableRawBufferPointer(start: o, count: 20))
                continue
            }
            o.storeBytes(of: FastBlock.f16(d).littleEndian, as: UInt16.self)
            (o + 2).storeBytes(of: FastBlock.f16(lo).littleEndian, as: UInt16.self)
            let q = (o + 4).assumingMemoryBound(to: UInt8.self)
            for j in 0..<16 {
                q[j] = Q4_0Fast.code((p[j] - lo) * id + 0.5) | Q4_0Fast.code((p[j + 16] - lo) * id + 0.5) << 4
            }
        }
    }
}
