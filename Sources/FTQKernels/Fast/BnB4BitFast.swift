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
        let zero = SIMD16<Int32>(repeating: 0)
        precondition(th.allSatisfy { $0 > -1 && $0 < 1 })
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
                m = m.replacing(with: v, where: v .> m)
                i += 16
            }
            let am = Float(bitPattern: m.max())
            absmax[b] = am
            let r = SIMD16<Float>(repeating: 1 / Swift.max(am, BnB4BitCodec.absmaxFloor))
            i = 0
            while i < bs {
                // The reference clamps x * r to [-1, 1] before counting thresholds; every
                // threshold lies strictly inside (-1, 1), so the count is the same unclamped.
                let v = raw.loadUnaligned(fromByteOffset: (base + i) * 4, as: SIMD16<Float>.self) * r
                // A true lane of a comparison mask is -1: subtracting counts the thresholds below v.
                var rank = zero &- unsafeBitCast(v .> t0, to: SIMD16<Int32>.self)
                rank &-= unsafeBitCast(v .> t1, to: SIMD16<Int32>.self)
                rank &-= unsafeBitCast(v .> t2, to: SIMD16<Int32>.self)
                rank &-= unsafeBitCast(v .> t3, to: SIMD16<Int32>.self)
                rank &-= unsafeBitCast(v .> t4, to: SIMD16<Int32>.self)
                rank &-= unsafeBitCast(v .> t5, to: SIMD16<Int32>.self)
                rank &-= unsafeBitCast(v .> t6, to: SIMD16<Int32>.self)
                rank &-= unsafeBitCast(v .> t7, to: SIMD16<Int32>.self)
                rank &-= unsafeBitCast(v .> t8, to: SIMD16<Int32>.self)
                rank &-= unsafeBitCast(v .> t9, to: SIMD16<Int32>.self)
                rank &-= unsafeBitCast(v .> t10, to: SIMD16<Int32>.self)
                rank &-= unsafeBitCast(v .> t11, to: SIMD16<Int32>.self)
                rank &-= unsafeBitCast(v .> t12, to: SIMD16<Int32>.self)
                rank &-= unsafeBitCast(v .> t13, to: SIMD16<Int32>.self)
                rank &-= unsafeBitCast(v .> t14, to: SIMD16<Int32>.self)
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

    /// The largest magnitude of each of `blocks` blocks of `bs` values, as float32 bit patterns
    /// (which order finite magnitudes; a pattern at or above 0x7f800000 is an infinity or a NaN).
    static func maxMagnitudeBits(_ x: UnsafePointer<Float>, bs: Int, blocks: Int, into out: UnsafeMutablePointer<UInt32>) {
        let raw = UnsafeRawPointer(x)
        for b in 0..<blocks {
            var m = SIMD16<UInt32>(repeating: 0)
            var i = b * bs
            let end = i + bs
            while i < end {
                let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<UInt32>.self) & 0x7fff_ffff
                m = m.replacing(with: v, where: v .> m)
                i += 16
            }
            out[b] = m.max()
        }
    }

    /// The largest magnitude bit pattern (sign cleared) of each of `blocks` blocks of `bs`
    /// 16-bit floats (BF16 or F16, whose patterns order their finite magnitudes).
    static func maxMagnitudeBits16(_ x: UnsafeRawPointer, bs: Int, blocks: Int, into out: UnsafeMutablePointer<UInt16>) {
        for b in 0..<blocks {
            var m = SIMD16<Int16>(repeating: 0)
            var i = b * bs
            let end = i + bs
            while i < end {
                let v = x.loadUnaligned(fromByteOffset: i * 2, as: SIMD16<Int16>.self) & 0x7fff
                m = m.replacing(with: v, where: v .> m)
                i += 16
            }
            out[b] = UInt16(m.max())
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
            let p = UnsafeRawPointer(packed + base / 2)
            var j = 0
            while j < bs / 2 {
                // Eight packed bytes at a time, each looking up its pair of codes.
                let w = p.loadUnaligned(fromByteOffset: j, as: UInt64.self)
                let o = (base + 2 * j) * 4
                out.storeBytes(of: pairs[Int(w & 0xff)], toByteOffset: o, as: SIMD2<Float>.self)
                out.storeBytes(of: pairs[Int((w >> 8) & 0xff)], toByteOffset: o + 8, as: SIMD2<Float>.self)
                out.storeBytes(of: pairs[Int((w >> 16) & 0xff)], toByteOffset: o + 16, as: SIMD2<Float>.self)
                out.storeBytes(of: pairs[Int((w >> 24) & 0xff)], toByteOffset: o + 24, as: SIMD2<Float>.self)
                out.storeBytes(of: pairs[Int((w >> 32) & 0xff)], toByteOffset: o + 32, as: SIMD2<Float>.self)
                out.storeBytes(of: pairs[Int((w >> 40) & 0xff)], toByteOffset: o + 40, as: SIMD2<Float>.self)
                out.storeBytes(of: pairs[Int((w >> 48) & 0xff)], toByteOffset: o + 48, as: SIMD2<Float>.self)
                out.storeBytes(of: pairs[Int(w >> 56)], toByteOffset: o + 56, as: SIMD2<Float>.self)
                j += 8
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
