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

    /// The same sums with one float64 partial sum per lane (8 lanes), added at the end: the
    /// results agree with referenceAdd within rounding (tests: 1e-6 relative), `maxAbs` and
    /// `maxAbsIndex` exactly.
    public mutating func add(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) {
        precondition(a.count == b.count)
        let n = a.count
        let full = n / 8 * 8
        var sq = SIMD8<Double>(), sa = SIMD8<Double>(), sb = SIMD8<Double>(), ab = SIMD8<Double>()
        var ad = SIMD8<Double>(), aa = SIMD8<Double>()
        var mx = SIMD8<Double>(repeating: -1), mi = SIMD8<Double>(repeating: 0)
        var poison = SIMD8<Float>()
        var lane = SIMD8<Double>(0, 1, 2, 3, 4, 5, 6, 7)
        let pa = UnsafeRawPointer(a.baseAddress ?? UnsafePointer(bitPattern: 8)!)
        let pb = UnsafeRawPointer(b.baseAddress ?? UnsafePointer(bitPattern: 8)!)
        var i = 0
        while i < full {
            let fa = pa.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            let fb = pb.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
            poison += fa * 0 + fb * 0
            let x = SIMD8<Double>(fa), y = SIMD8<Double>(fb)
            let d = y - x
            sq += d * d
            sa += x * x
            sb += y * y
            ab += x * y
            let absD = d.replacing(with: -d, where: d .< 0)
            ad += absD
            aa += x.replacing(with: -x, where: x .< 0)
            let better = absD .> mx
            mx = mx.replacing(with: absD, where: better)
            mi = mi.replacing(with: lane, where: better)
            lane += 8
            i += 8
        }
        if full > 0 {
            if poison != SIMD8<Float>() {
                // Some value is not finite: redo this call with the reference, which skips them.
                referenceAdd(a, b)
                return
            }
            sumSqDiff += sq.sum()
            sumSqA += sa.sum()
            sumSqB += sb.sum()
            sumAB += ab.sum()
            sumAbsDiff += ad.sum()
            sumAbsA += aa.sum()
            for l in 0..<8 where mx[l] >= 0 {
                let idx = count + Int(mi[l])
                if mx[l] > maxAbs || maxAbsIndex < 0 || (mx[l] == maxAbs && idx < maxAbsIndex) {
                    maxAbs = mx[l]
                    maxAbsIndex = idx
                }
            }
        }
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
