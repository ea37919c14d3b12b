import Foundation

/// The sums behind every error figure of formats/metrics.md, for pairs (a, b) of float32 values
/// (a the reference): float64 sums of d², a², b², ab, |d| and |a| with d = b - a formed in
/// float64, the largest |d| and its first index, and whether any value was not finite.
public struct ErrorStats: Sendable, Equatable {
    public var count = 0
    public var sumSqDiff = 0.0
    public var sumSqA = 0.0
    public var sumSqB = 0.0
    public var sumAB = 0.0
    public var sumAbsDiff = 0.0
    public var sumAbsA = 0.0
    public var maxAbs = 0.0
    /// The first index (counting from the first pair ever added) where |d| = maxAbs; -1 when
    /// no pair was added.
    public var maxAbsIndex = -1
    public var nonFinite = false

    public init() {}

    /// The scalar reference (the specification): sequential float64 sums.
    public mutating func referenceAdd(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) {
        precondition(a.count == b.count)
        for i in 0..<a.count {
            if !a[i].isFinite || !b[i].isFinite { nonFinite = true; continue }
            let x = Double(a[i]), y = Double(b[i])
            let d = y - x
            sumSqDiff += d * d
            sumSqA += x * x
            sumSqB += y * y
            sumAB += x * y
            sumAbsDiff += abs(d)
            sumAbsA += abs(x)
            if abs(d) > maxAbs || maxAbsIndex < 0 {
                maxAbs = abs(d)
                maxAbsIndex = count + i
            }
        }
        count += a.count
    }

    /// The same sums, fast: pairs are taken 16 lanes at a time; in each lane, the products of
    /// up to 8 consecutive groups are formed and added in float32 (the difference, each product
    /// and each of the 8 additions rounds once: a lane's partial sum of positive terms is within
    /// 10 * 2^-24 relative of its exact value), then the lanes' partial sums are added to float64
    /// accumulators. Σab comes out within 10 * 2^-24 * Σ|ab| of the exact sum. The maximum is
    /// exact: a run of groups whose float32 maximum could reach the running maximum is rescanned
    /// in float64 by the reference. Tests: 1e-6 relative against referenceAdd (1e-6 absolute for
    /// the cosine), `maxAbs` and `maxAbsIndex` exactly.
    public mutating func add(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) {
        precondition(a.count == b.count)
        let n = a.count
        let run = 128
        let full = n / run * run
        guard full > 0 else { return referenceAdd(a, b) }
        let pa = UnsafeRawPointer(a.baseAddress!), pb = UnsafeRawPointer(b.baseAddress!)
        var sq = SIMD16<Double>(), sa = SIMD16<Double>(), sb = SIMD16<Double>(), ab = SIMD16<Double>()
        var ad = SIMD16<Double>(), aa = SIMD16<Double>()
        // The running maximum as float32, lowered by a relative 2^-22 so that a run whose exact
        // maximum ties or beats it but rounds below it in float32 is still rescanned.
        var best = (value: maxAbs, index: maxAbsIndex)
        var bar: Float = best.index >= 0 ? Float(best.value) * (1 - 0x1p-22) : -1
        var i = 0
        while i < full {
            var fsq = SIMD16<Float>(), fsa = SIMD16<Float>(), fsb = SIMD16<Float>(), fab = SIMD16<Float>()
            var fad = SIMD16<Float>(), faa = SIMD16<Float>(), fmax = SIMD16<Float>()
            for g in 0..<(run / 16) {
                let off = (i + g * 16) * 4
                let x = pa.loadUnaligned(fromByteOffset: off, as: SIMD16<Float>.self)
                let y = pb.loadUnaligned(fromByteOffset: off, as: SIMD16<Float>.self)
                let d = y - x
                let absD = unsafeBitCast(unsafeBitCast(d, to: SIMD16<UInt32>.self) & 0x7fff_ffff, to: SIMD16<Float>.self)
                fsq += d * d
                fsa += x * x
                fsb += y * y
                fab += x * y
                fad += absD
                faa += unsafeBitCast(unsafeBitCast(x, to: SIMD16<UInt32>.self) & 0x7fff_ffff, to: SIMD16<Float>.self)
                fmax = fmax.replacing(with: absD, where: absD .> fmax)
            }
            sq += SIMD16<Double>(fsq)
            sa += SIMD16<Double>(fsa)
            sb += SIMD16<Double>(fsb)
            ab += SIMD16<Double>(fab)
            ad += SIMD16<Double>(fad)
            aa += SIMD16<Double>(faa)
            if fmax.max() >= bar {
                var probe = ErrorStats()
                probe.count = count + i
                probe.maxAbs = best.value
                probe.maxAbsIndex = best.index
                probe.referenceAdd(UnsafeBufferPointer(rebasing: a[i..<(i + run)]), UnsafeBufferPointer(rebasing: b[i..<(i + run)]))
                best = (probe.maxAbs, probe.maxAbsIndex)
                bar = Float(best.value) * (1 - 0x1p-22)
            }
            i += run
        }
        let sums = (sq.sum(), sa.sum(), sb.sum(), ab.sum(), ad.sum(), aa.sum())
        // Some value is not finite, or a float32 product may have overflowed or underflowed
        // (magnitudes beyond about 2^63 or below 2^-50): redo this call with the reference.
        let lowest = Swift.min(sums.0, sums.1, sums.2)
        // (A NaN or an infinity in the input makes the sums of squares non-finite.)
        if !(sums.0 + sums.1 + sums.2 + abs(sums.3) + sums.4 + sums.5).isFinite
            || (lowest < 0x1p-100 && (sums.4 > 0 || sums.5 > 0)) {
            return referenceAdd(a, b)
        }
        (maxAbs, maxAbsIndex) = best
        sumSqDiff += sums.0
        sumSqA += sums.1
        sumSqB += sums.2
        sumAB += sums.3
        sumAbsDiff += sums.4
        sumAbsA += sums.5
        count += full
        if full < n {
            referenceAdd(UnsafeBufferPointer(rebasing: a[full...]), UnsafeBufferPointer(rebasing: b[full...]))
        }
    }

    /// Adds another tensor's sums (for per-kind and whole-model figures); the maximum keeps its
    /// own index (callers track which tensor it came from).
    public mutating func merge(_ o: ErrorStats) {
        count += o.count
        sumSqDiff += o.sumSqDiff
        sumSqA += o.sumSqA
        sumSqB += o.sumSqB
        sumAB += o.sumAB
        sumAbsDiff += o.sumAbsDiff
        sumAbsA += o.sumAbsA
        if o.maxAbsIndex >= 0 && (o.maxAbs > maxAbs || maxAbsIndex < 0) {
            maxAbs = o.maxAbs
            maxAbsIndex = o.maxAbsIndex
        }
        nonFinite = nonFinite || o.nonFinite
    }

    // MARK: figures (nil where formats/metrics.md says null)

    func finite(_ x: Double) -> Double? { !nonFinite && x.isFinite ? x : nil }

    public var identical: Bool { !nonFinite && sumSqDiff == 0 }
    public var rmse: Double? { count > 0 ? finite((sumSqDiff / Double(count)).squareRoot()) : nil }
    public var meanAbs: Double? { count > 0 ? finite(sumAbsDiff / Double(count)) : nil }
    public var maxAbsValue: Double? { count > 0 ? finite(maxAbs) : nil }
    public var relativeFrobenius: Double? {
        if identical { return 0 }
        return sumSqA > 0 ? finite(sumSqDiff.squareRoot() / sumSqA.squareRoot()) : nil
    }
    public var sqnrDB: Double? { sumSqDiff > 0 && sumSqA > 0 ? finite(10 * log10(sumSqA / sumSqDiff)) : nil }
    public var cosine: Double? {
        if sumSqA == 0 || sumSqB == 0 { return identical && count > 0 ? 1 : nil }
        return finite(sumAB / (sumSqA * sumSqB).squareRoot())
    }
    public var rmseRelative: Double? {
        guard let r = rmse, sumAbsA > 0 else { return nil }
        return finite(r / (sumAbsA / Double(count)))
    }
    public var maxAbsRelative: Double? {
        guard let m = maxAbsValue, sumAbsA > 0 else { return nil }
        return finite(m / (sumAbsA / Double(count)))
    }
}
