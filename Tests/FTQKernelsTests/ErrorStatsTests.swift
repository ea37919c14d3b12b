import Testing
@testable import FTQKernels

/// The vectorised error accumulator against the scalar float64 reference (formats/metrics.md).
@Suite struct ErrorStatsTests {
    static func close(_ x: Double, _ y: Double) -> Bool {
        x == y || abs(x - y) <= 1e-6 * max(abs(x), abs(y))
    }

    @Test func vectorisedMatchesReference() {
        var rng = SplitMix(seed: 11)
        for n in [0, 1, 7, 8, 9, 100, 4096, 100_003] {
            var a = (0..<n).map { _ in Float(rng.normal()) * 0.05 }
            var b = a.map { $0 + Float(rng.normal()) * 0.001 }
            if n > 50 { (a[37], b[37], a[45], b[45]) = (0, 0.5, 0, -0.5) }  // a tie of the maximum: the first wins
            var r = ErrorStats(), f = ErrorStats(), chunked = ErrorStats()
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    r.referenceAdd(pa, pb)
                    f.add(pa, pb)
                    var at = 0
                    while at < n {
                        let m = min(n - at, 1 + Int(rng.next() % 5000))
                        chunked.add(UnsafeBufferPointer(rebasing: pa[at..<(at + m)]), UnsafeBufferPointer(rebasing: pb[at..<(at + m)]))
                        at += m
                    }
                }
            }
            for s in [f, chunked] {
                #expect(s.count == r.count && s.maxAbs == r.maxAbs && s.maxAbsIndex == r.maxAbsIndex, "n \(n)")
                for (x, y) in [(s.sumSqDiff, r.sumSqDiff), (s.sumSqA, r.sumSqA), (s.sumSqB, r.sumSqB), (s.sumAB, r.sumAB),
                               (s.sumAbsDiff, r.sumAbsDiff), (s.sumAbsA, r.sumAbsA)] {
                    #expect(Self.close(x, y), "n \(n): \(x) vs \(y)")
                }
                for (x, y) in [(s.rmse, r.rmse), (s.relativeFrobenius, r.relativeFrobenius), (s.sqnrDB, r.sqnrDB),
                               (s.meanAbs, r.meanAbs), (s.rmseRelative, r.rmseRelative)] {
                    #expect((x == nil) == (y == nil) && Self.close(x ?? 0, y ?? 0), "n \(n)")
                }
                #expect(abs((s.cosine ?? 0) - (r.cosine ?? 0)) <= 1e-6, "n \(n)")
            }
            if n > 50 { #expect(r.maxAbsIndex == 37) }
        }
    }

    /// Unrelated and opposite tensors (the cross sum cancels), and a NaN or an infinity deep
    /// inside the vectorised part: figures within the bound, non-finite values detected.
    @Test func cancellingCrossSumsAndNonFiniteRuns() {
        var rng = SplitMix(seed: 23)
        let n = 10_007
        let a = (0..<n).map { _ in Float(rng.normal()) }
        for b in [(0..<n).map { _ in Float(rng.normal()) }, a.map { -$0 }, a.map { $0 * 1e-3 }] {
            var r = ErrorStats(), f = ErrorStats()
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { r.referenceAdd(pa, $0); f.add(pa, $0) } }
            #expect(f.maxAbs == r.maxAbs && f.maxAbsIndex == r.maxAbsIndex)
            for (x, y) in [(f.sumSqDiff, r.sumSqDiff), (f.sumSqA, r.sumSqA), (f.sumSqB, r.sumSqB),
                           (f.sumAbsDiff, r.sumAbsDiff), (f.sumAbsA, r.sumAbsA)] {
                #expect(Self.close(x, y), "\(x) vs \(y)")
            }
            // Σab may cancel: its error is bounded by Σ|ab|, so the cosine is checked absolutely.
            #expect(abs((f.cosine ?? 9) - (r.cosine ?? 0)) <= 1e-6)
        }
        for bad: Float in [.nan, .infinity, -.infinity] {
            var b = a
            b[5003] = bad
            var f = ErrorStats()
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { f.add(pa, $0) } }
            #expect(f.nonFinite && f.rmse == nil && f.cosine == nil && f.count == n)
        }
    }

    /// Magnitudes whose float32 squares would underflow or overflow, and differences of one
    /// ulp between tiny values: the figures still match the float64 reference.
    @Test func extremeMagnitudes() {
        for scale: Float in [1e-30, 1e-20, 1e-12, 1, 1e12, 1e20, 3e30] {
            let a = (0..<1000).map { Float($0 % 97 - 48) * scale }
            let b = a.map { $0.nextUp }
            var r = ErrorStats(), f = ErrorStats()
            a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { r.referenceAdd(pa, $0); f.add(pa, $0) } }
            #expect(!f.identical && f.maxAbs == r.maxAbs && f.maxAbsIndex == r.maxAbsIndex, "scale \(scale)")
            for (x, y) in [(f.sumSqDiff, r.sumSqDiff), (f.sumSqA, r.sumSqA), (f.sumAB, r.sumAB), (f.sumAbsDiff, r.sumAbsDiff)] {
                #expect(Self.close(x, y), "scale \(scale): \(x) vs \(y)")
            }
        }
    }

    @Test func identicalZeroAndNonFinite() {
        let a: [Float] = (0..<20).map { Float($0) - 10 }
        var s = ErrorStats()
        a.withUnsafeBufferPointer { s.add($0, $0) }
        #expect(s.identical && s.sqnrDB == nil && s.relativeFrobenius == 0 && s.cosine == 1 && s.rmse == 0)
        let z = [Float](repeating: 0, count: 16)
        var zs = ErrorStats()
        z.withUnsafeBufferPointer { zs.add($0, $0) }
        #expect(zs.identical && zs.cosine == 1 && zs.rmseRelative == nil && zs.relativeFrobenius == 0)
        var bad = a
        bad[12] = .nan
        var ns = ErrorStats()
        a.withUnsafeBufferPointer { pa in bad.withUnsafeBufferPointer { ns.add(pa, $0) } }
        #expect(ns.nonFinite && ns.rmse == nil && ns.cosine == nil && !ns.identical)
    }
}
