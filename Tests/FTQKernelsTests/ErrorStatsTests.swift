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
            }
            if n > 50 { #expect(r.maxAbsIndex == 37) }
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
