#if FTQ_AVX2 && arch(x86_64)
import _Builtin_intrinsics.intel
#endif

/// The rank of scaled 4-bit values (the count of thresholds strictly below each) by a bucket
/// lookup, for AVX2 builds (formats/bnb-quants.md, "Fast ranking"): k = trunc(16 v + 16) (one
/// fused multiply-add, clamped to 31) names one of 32 buckets of width 1/16 over [-1, 1]; a
/// byte table gives g, the number of thresholds below the bucket's lower edge; the rank is g,
/// plus one when v lies above threshold g. That is exact when neighbouring thresholds are more
/// than 1/16 apart (a bucket then holds at most one) and none lies within 2^-22 below a bucket
/// edge (where the rounding of 16 v + 16 could move v into the next bucket): true of NF4's,
/// checked by `init?`, which refuses other tables (FP4's thresholds near 0 are closer).
struct BucketRule: Sendable {
    /// g for each of the 32 buckets.
    let g: [UInt8]
    /// Thresholds 0-14, then +infinity.
    let thresholds: [Float]

    init?(_ th: [Float]) {
        guard th.count == 15 else { return nil }
        for j in 1..<15 where !(th[j] - th[j - 1] > 1.0 / 16) { return nil }
        for t in th {
            // Within 2^-22 below an edge e = m / 16 - 1 (m = 0 ... 32)?
            let m = ((Double(t) + 1) * 16).rounded(.up)
            if Double(t) < m / 16 - 1 && Double(t) >= m / 16 - 1 - 0x1p-22 { return nil }
        }
        g = (0..<32).map { k in
            let edge = Float(k) / 16 - 1  // exact
            return UInt8(th.filter { $0 < edge }.count)
        }
        thresholds = th + [Float.infinity]
    }
}

#if FTQ_AVX2 && arch(x86_64)
/// BucketRule's tables in AVX2 registers, and the ranking itself.
struct BucketKernel: RankRule {
    let lowTable: __m256i, highTable: __m256i
    let lowThresholds: __m256, highThresholds: __m256

    init(_ r: BucketRule) {
        // Each table of 16 bytes in both 128-bit halves (pshufb looks up within a half).
        let low = Array(r.g[0..<16]) + Array(r.g[0..<16]), high = Array(r.g[16..<32]) + Array(r.g[16..<32])
        lowTable = low.withUnsafeBytes { $0.loadUnaligned(as: __m256i.self) }
        highTable = high.withUnsafeBytes { $0.loadUnaligned(as: __m256i.self) }
        lowThresholds = r.thresholds.withUnsafeBytes { $0.loadUnaligned(as: __m256.self) }
        highThresholds = r.thresholds.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 32, as: __m256.self) }
    }

    @inline(__always)
    func rank8(_ v: __m256) -> __m256i {
        let k = _mm256_min_epi32(_mm256_cvttps_epi32(_mm256_fmadd_ps(v, _mm256_set1_ps(16), _mm256_set1_ps(16))), _mm256_set1_epi32(31))
        // pshufb looks up byte 0 of each 32-bit lane; bytes 1-3 get index 0x80, which gives 0.
        let index = _mm256_or_si256(k, _mm256_set1_epi32(Int32(bitPattern: 0x8080_8000)))
        let g = _mm256_blendv_epi8(_mm256_shuffle_epi8(lowTable, index), _mm256_shuffle_epi8(highTable, index),
                                   _mm256_cmpgt_epi32(k, _mm256_set1_epi32(15)))
        // Threshold g: from the low or high eight by bit 3 of g (moved to the sign bit).
        let t = _mm256_blendv_ps(_mm256_permutevar8x32_ps(lowThresholds, g), _mm256_permutevar8x32_ps(highThresholds, g),
                                 _mm256_castsi256_ps(_mm256_slli_epi32(g, 28)))
        let above = unsafeBitCast(unsafeBitCast(v, to: SIMD8<Float>.self) .> unsafeBitCast(t, to: SIMD8<Float>.self), to: __m256i.self)
        return _mm256_sub_epi32(g, above)
    }

    @inline(__always)
    func rank(_ v: SIMD16<Float>) -> SIMD16<Int32> {
        let lo = rank8(unsafeBitCast(v.lowHalf, to: __m256.self))
        let hi = rank8(unsafeBitCast(v.highHalf, to: __m256.self))
        return SIMD16(lowHalf: unsafeBitCast(lo, to: SIMD8<Int32>.self), highHalf: unsafeBitCast(hi, to: SIMD8<Int32>.self))
    }
}
#endif
