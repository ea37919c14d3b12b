import FTQCore

/// A vectorised Q8_0 quantizer, bit-identical to the reference
/// (``GGMLLegacyQuant/quantizeQ8_0(_:_:)``): the block maximum and the scale are computed
/// exactly as there; the codes, the same float32 multiply and round-half-away per element,
/// written without library calls so that the compiler can vectorise the loop. A block with a non-finite value or a non-finite `1/d` goes through
/// the reference. Tested against it in FTQKernelsTests/FastQuantTests.
enum Q8_0Fast {
    static func quantize(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableRawBufferPointer) {
        let blocks = x.count / 32
        let base = x.baseAddress!
        for b in 0..<blocks {
            let block = UnsafeBufferPointer(start: base + b * 32, count: 32)
            let o = UnsafeMutableRawBufferPointer(rebasing: out[(b * 34)..<(b * 34 + 34)])
            var amax: Float = 0
            var finite = true
            for v in block {
                amax = Swift.max(amax, abs(v))
                finite = finite && v.isFinite
            }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            guard finite, id.isFinite else {
                GGMLLegacyQuant.quantizeQ8_0(block, o)
                continue
            }
            GGMLLegacyQuant.putHalf(d, o, 0)
            let q = o.baseAddress!.assumingMemoryBound(to: Int8.self) + 2
            for j in 0..<32 {
                // roundf(v) for |v| <= 127: truncate, then step away from zero when the dropped
                // fraction (exact in float32) is at least one half.
                let v = block[j] * id
                let t = Int32(v)
                let f = v - Float(t)
                q[j] = Int8(truncatingIfNeeded: t + (f >= 0.5 ? 1 : 0) - (f <= -0.5 ? 1 : 0))
            }
        }
    }
}
