/// Fast 4-bit (NF4, FP4) kernels for whole blocks, bit-identical to BnB4BitCodec's reference
/// (formats/bnb-quants.md, "4-bit"): the same float32 operations, vectorised across elements.
/// Inputs must be finite (the quantizer refuses other tensors before it gets here).
protocol RankRule {
    func rank(_ v: SIMD16<Float>) -> SIMD16<Int32>
}

/// Where a block's values come from: float32, or BF16 bit patterns widened (exactly) in
/// registers, so that BF16 tensors need no float32 copy.
protocol BlockValues {
    /// 16 values from element `i`, as float32.
    func load16(_ i: Int) -> SIMD16<Float>
    /// The largest magnitude of elements [start, start + count) (count a multiple of 16).
    func maxMagnitude(_ start: Int, _ count: Int) -> Float
}

struct F32Values: BlockValues {
    let raw: UnsafeRawPointer
    @inline(__always) func load16(_ i: Int) -> SIMD16<Float> { raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) }
    @inline(__always) func maxMagnitude(_ start: Int, _ count: Int) -> Float {
        // As bit patterns, which order finite magnitudes.
        var m = SIMD16<UInt32>(repeating: 0)
        var i = start
        while i < start + count {
            let v = raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<UInt32>.self) & 0x7fff_ffff
            m = m.replacing(with: v, where: v .> m)
            i += 16
        }
        return Float(bitPattern: m.max())
    }
}

struct BF16Values: BlockValues {
    let raw: UnsafeRawPointer
    @inline(__always) func load16(_ i: Int) -> SIMD16<Float> {
        let h = raw.loadUnaligned(fromByteOffset: i * 2, as: SIMD16<UInt16>.self)
        return unsafeBitCast(SIMD16<UInt32>(truncatingIfNeeded: h) &<< 16, to: SIMD16<Float>.self)
    }
    @inline(__always) func maxMagnitude(_ start: Int, _ count: Int) -> Float {
        var m = SIMD16<Int16>(repeating: 0)
        var i = start
        while i < start + count {
            let v = raw.loadUnaligned(fromByteOffset: i * 2, as: SIMD16<Int16>.self) & 0x7fff
            m = m.replacing(with: v, where: v .> m)
            i += 16
        }
        return Float(bitPattern: UInt32(UInt16(m.max())) << 16)
    }
}

public enum BnB4BitFast {
    /// How the kernel ranks 16 scaled values among the 15 thresholds (the count of thresholds
    /// strictly below each): both rules give the reference's rank exactly.
    public enum Rule: Sendable {
        /// 15 comparisons per value, counted: fewest instructions with 128-bit SSE2 vectors.
        case count
        /// A search tree (compare with t7, then t3 or t11, then the three thresholds of the
        /// group), choosing thresholds with blends: fewer instructions where a blend is one
        /// (AVX2 builds).
        case tree
        /// A bucket lookup and one comparison (BucketRule, AVX2 builds only): for threshold
        /// tables it admits (NF4's); others use `tree`.
        case bucket
    }

    /// The rule this build uses: `bucket` when compiled for AVX2 (tools/release-build.sh
    /// defines FTQ_AVX2), `count` otherwise.
    #if FTQ_AVX2
    public static let defaultRule = Rule.bucket
    #else
    public static let defaultRule = Rule.count
    #endif

    /// The rules this build can run (every one is tested against the reference).
    #if FTQ_AVX2 && arch(x86_64)
    public static let rules: [Rule] = [.count, .tree, .bucket]
    #else
    public static let rules: [Rule] = [.count, .tree]
    #endif

    /// Quantizes `blocks` full blocks of `bs` values (bs a multiple of 16).
    public static func quantize(_ codec: BnB4BitCodec, _ x: UnsafePointer<Float>, blocks: Int,
                                packed: UnsafeMutablePointer<UInt8>, absmax: UnsafeMutablePointer<Float>, rule: Rule = defaultRule) {
        dispatch(codec, F32Values(raw: UnsafeRawPointer(x)), blocks, packed, absmax, rule)
    }

    /// The same for BF16 values given as bit patterns: identical results to quantizing their
    /// (exact) float32 widening.
    public static func quantize(_ codec: BnB4BitCodec, bf16 x: UnsafePointer<UInt16>, blocks: Int,
                                packed: UnsafeMutablePointer<UInt8>, absmax: UnsafeMutablePointer<Float>, rule: Rule = defaultRule) {
        dispatch(codec, BF16Values(raw: UnsafeRawPointer(x)), blocks, packed, absmax, rule)
    }

    @inline(__always)
    static func dispatch<V: BlockValues>(_ codec: BnB4BitCodec, _ x: V, _ blocks: Int,
                                         _ packed: UnsafeMutablePointer<UInt8>, _ absmax: UnsafeMutablePointer<Float>, _ rule: Rule) {
        let th = codec.thresholds
        precondition(th.count == 15 && th.allSatisfy { $0 > -1 && $0 < 1 })
        switch rule {
        case .count: run(codec, x, blocks, packed, absmax, CountRule(th))
        case .tree: run(codec, x, blocks, packed, absmax, TreeRule(th))
        case .bucket:
            #if FTQ_AVX2 && arch(x86_64)
            if let bucket = codec.bucketRule {
                run(codec, x, blocks, packed, absmax, BucketKernel(bucket))
                return
            }
            #endif
            run(codec, x, blocks, packed, absmax, TreeRule(th))
        }
    }

    struct CountRule: RankRule {
        let t0, t1, t2, t3, t4, t5, t6, t7, t8, t9, t10, t11, t12, t13, t14: SIMD16<Float>
        init(_ th: [Float]) {
            let t = th.map { SIMD16<Float>(repeating: $0) }
            (t0, t1, t2, t3, t4, t5, t6, t7) = (t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7])
            (t8, t9, t10, t11, t12, t13, t14) = (t[8], t[9], t[10], t[11], t[12], t[13], t[14])
        }
        @inline(__always)
        func rank(_ v: SIMD16<Float>) -> SIMD16<Int32> {
            // A true lane of a comparison mask is -1: subtracting counts the thresholds below v.
            var r = SIMD16<Int32>(repeating: 0) &- unsafeBitCast(v .> t0, to: SIMD16<Int32>.self)
            r &-= unsafeBitCast(v .> t1, to: SIMD16<Int32>.self)
            r &-= unsafeBitCast(v .> t2, to: SIMD16<Int32>.self)
            r &-= unsafeBitCast(v .> t3, to: SIMD16<Int32>.self)
            r &-= unsafeBitCast(v .> t4, to: SIMD16<Int32>.self)
            r &-= unsafeBitCast(v .> t5, to: SIMD16<Int32>.self)
            r &-= unsafeBitCast(v .> t6, to: SIMD16<Int32>.self)
            r &-= unsafeBitCast(v .> t7, to: SIMD16<Int32>.self)
            r &-= unsafeBitCast(v .> t8, to: SIMD16<Int32>.self)
            r &-= unsafeBitCast(v .> t9, to: SIMD16<Int32>.self)
            r &-= unsafeBitCast(v .> t10, to: SIMD16<Int32>.self)
            r &-= unsafeBitCast(v .> t11, to: SIMD16<Int32>.self)
            r &-= unsafeBitCast(v .> t12, to: SIMD16<Int32>.self)
            r &-= unsafeBitCast(v .> t13, to: SIMD16<Int32>.self)
            r &-= unsafeBitCast(v .> t14, to: SIMD16<Int32>.self)
            return r
        }
    }

    struct TreeRule: RankRule {
        let t3, t7, t11: SIMD16<Float>
        let l0, l1, l2, m0, m1, m2, h0, h1, h2, p0, p1, p2: SIMD16<Float>
        init(_ th: [Float]) {
            let t = th.map { SIMD16<Float>(repeating: $0) }
            (t3, t7, t11) = (t[3], t[7], t[11])
            (l0, l1, l2, m0, m1, m2) = (t[0], t[1], t[2], t[4], t[5], t[6])
            (h0, h1, h2, p0, p1, p2) = (t[8], t[9], t[10], t[12], t[13], t[14])
        }
        @inline(__always)
        func rank(_ v: SIMD16<Float>) -> SIMD16<Int32> {
            // Thresholds ascend: above t7 the rank is 8 + the count among t8..t14, and so on.
            let a = v .> t7
            let b = v .> t3.replacing(with: t11, where: a)
            var r = SIMD16<Int32>(repeating: 0).replacing(with: 8, where: a)
            r = r.replacing(with: r &+ 4, where: b)
            let s0 = l0.replacing(with: h0, where: a).replacing(with: m0.replacing(with: p0, where: a), where: b)
            let s1 = l1.replacing(with: h1, where: a).replacing(with: m1.replacing(with: p1, where: a), where: b)
            let s2 = l2.replacing(with: h2, where: a).replacing(with: m2.replacing(with: p2, where: a), where: b)
            r &-= unsafeBitCast(v .> s0, to: SIMD16<Int32>.self)
            r &-= unsafeBitCast(v .> s1, to: SIMD16<Int32>.self)
            r &-= unsafeBitCast(v .> s2, to: SIMD16<Int32>.self)
            return r
        }
    }

    @inline(__always)
    static func run<V: BlockValues, R: RankRule>(_ codec: BnB4BitCodec, _ x: V, _ blocks: Int,
                                                 _ packed: UnsafeMutablePointer<UInt8>, _ absmax: UnsafeMutablePointer<Float>, _ rule: R) {
        let bs = codec.blocksize
        let identity = codec.type == .nf4
        let map = codec.nibbleOfRank
        for b in 0..<blocks {
            let base = b * bs
            let am = x.maxMagnitude(base, bs)
            absmax[b] = am
            let r = SIMD16<Float>(repeating: 1 / Swift.max(am, BnB4BitCodec.absmaxFloor))
            var i = 0
            while i < bs {
                // The reference clamps x * r to [-1, 1] before ranking; every threshold lies
                // strictly inside (-1, 1), so the rank is the same unclamped.
                let rank = rule.rank(x.load16(base + i) * r)
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
