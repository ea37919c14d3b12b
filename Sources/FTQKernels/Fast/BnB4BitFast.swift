/// Fast 4-bit (NF4, FP4) kernels for whole blocks, bit-identical to BnB4BitCodec's reference
/// (formats/bnb-quants.md, "4-bit"): the same float32 operations, vectorised across elements.
/// Inputs must be finite (the quantizer refuses other tensors before it gets here).
enum BnB4BitFast {
    /// Quantizes `blocks` full blocks of `bs` values (bs a multiple of 16).
    static func quantize(_ codec: BnB4BitCodec, _ x: UnsafePointer<Float>, blocks: Int,
                         packed: UnsafeMutablePointer<UInt8>, absmax: UnsafeMutablePointer<Float>) {
        let bs = codec.blocksize
        let th = codec.thresholds
        let t0 = SIMD16<Float>(repeating: th[0]), t1 = SIMD16<Float>(repeating: th[1]), t2 = SIMD16<Float>(repeating: th[2])
        let t3 = SIMD16<Float>(repeating: th[3]), t4 = SIMD16<Float>(repeating: th[4]), t5 = SIMD16<Float>(repeating: th[5])
        let t6 = SIMD16<Float>(repeating: th[6]), t7 = SIMD16<Float>(repeating: th[7]), t8 = SIMD16<Float>(repeating: th[8])
        let t9 = SIMD16<Float>(repeating: th[9]), t10 = SIMD16<Float>(repeating: th[10]), t11 = SIMD16<Float>(repeating: th[11])
        let t12 = SIMD16<Float>(repeating: th[12]), t13 = SIMD16<Float>(repeating: th[13]), t14 = SIMD16<Float>(repeating: th[14])
        let one = SIMD16<Int32>(repeating: 1), zero = SIMD16<Int32>(repeating: 0)
        let lo = SIMD16<Float>(repeating: -1), hi = SIMD16<Float>(repeating: 1)
        let identity = codec.type == .nf4
        let map = codec.nibbleOfRank
        let raw = UnsafeRawPointer(x)
        for b in 0..<blocks {
            let base = b * bs
            // The largest magnitude, as bit patterns (which order finite magnitudes).
            var m = SIMD16<UInt32>(repeating: 0)
            var i = 0
            while i < bs {
                let v = raw.loadUnaligned(fromByteOffset: (base + i) * 4, as: SIMD16<UInt32>.self) & 0x7fff_ffff
                m = pointwiseMax(m, v)
                i += 16
            }
            let am = Float(bitPattern: m.max())
            absmax[b] = am
            let r = SIMD16<Float>(repeating: 1 / Swift.max(am, BnB4BitCodec.absmaxFloor))
            i = 0
            while i < bs {
                var v = raw.loadUnaligned(fromByteOffset: (base + i) * 4, as: SIMD16<Float>.self) * r
                v = v.replacing(with: lo, where: v .< lo)
                v = v.replacing(with: hi, where: v .> hi)
                var rank = zero.replacing(with: one, where: v .> t0)
                rank &+= zero.replacing(with: one, where: v .> t1)
                rank &+= zero.replacing(with: one, where: v .> t2)
                rank &+= zero.replacing(with: one, where: v .> t3)
                rank &+= zero.replacing(with: one, where: v .> t4)
                rank &+= zero.replacing(with: one, where: v .> t5)
                rank &+= zero.replacing(with: one, where: v .> t6)
                rank &+= zero.replacing(with: one, where: v .> t7)
                rank &+= zero.replacing(with: one, where: v .> t8)
                rank &+= zero.replacing(with: one, where: v .> t9)
                rank &+= zero.replacing(with: one, where: v .> t10)
                rank &+= zero.replacing(with: one, where: v .> t11)
                rank &+= zero.replacing(with: one, where: v .> t12)
                rank &+= zero.replacing(with: one, where: v .> t13)
                rank &+= zero.replacing(with: one, where: v .> t14)
                var q = SIMD16<UInt8>(truncatingIfNeeded: rank)
                if !identity {
                    for l in 0..<16 { q[l] = map[Int(q[l])] }
                }
                let p = (q.evenHalf &<< 4) | q.oddHalf
                UnsafeMutableRawPointer(packed + (base + i) / 2).storeBytes(of: p, as: SIMD8<UInt8>.self)
                i += 16
            }
        }
    }

    /// Pairs (code[hi], code[lo]) for every byte value, for one code table.
    static func pairTable(_ code: [Float]) -> [SIMD2<Float>] {
        (0..<256).map { SIMD2(code[$0 >> 4], code[$0 & 15]) }
    }

    /// Dequantizes `blocks` full blocks of `bs` values: each packed byte looks up its pair of
    /// codes, then the block is multiplied by its absmax (the same single product per value).
    static func dequantize(pairs: UnsafePointer<SIMD2<Float>>, bs: Int, _ packed: UnsafePointer<UInt8>, blocks: Int,
                           absmax: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
        let out = UnsafeMutableRawPointer(y)
        for b in 0..<blocks {
            let base = b * bs
            let p = packed + base / 2
            for j in 0..<(bs / 2) {
                out.storeBytes(of: pairs[Int(p[j])], toByteOffset: (base + 2 * j) * 4, as: SIMD2<Float>.self)
            }
            let a = SIMD16<Float>(repeating: absmax[b])
            var i = 0
            while i < bs {
                let v = out.loadUnaligned(fromByteOffset: (base + i) * 4, as: SIMD16<Float>.self) * a
                out.storeBytes(of: v, toByteOffset: (base + i) * 4, as: SIMD16<Float>.self)
                i += 16
            }
        }
    }
}
