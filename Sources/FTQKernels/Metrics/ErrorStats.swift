#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

    /// The same sums, fast: pairs are taken `Lanes.scalarCount` at a time (4 on the portable
    /// build, 8 where FTQ_AVX2 gives 256-bit registers: the seven float32 accumulators then fit
    /// in registers); in each lane, the products of 8 consecutive groups are formed and added
    /// in float32 (the difference, each product and each of the 8 additions rounds once: a
    /// lane's partial sum of positive terms is within 10 * 2^-24 relative of its exact value),
    /// then the lanes' partial sums are added to float64 accumulators. Σab comes out within
    /// 10 * 2^-24 * Σ|ab| of the exact sum. The maximum is exact: a run of groups whose float32
    /// maximum could reach the running maximum is rescanned in float64 by the reference. Tests:
    /// 1e-6 relative against referenceAdd (1e-6 absolute for the cosine), `maxAbs` and
    /// `maxAbsIndex` exactly.
    public mutating func add(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) {
        #if FTQ_AVX2
        typealias Lanes = SIMD8<Float>
        typealias Bits = SIMD8<UInt32>
        #else
        typealias Lanes = SIMD4<Float>
        typealias Bits = SIMD4<UInt32>
        #endif
        typealias Wide = SIMD4<Double>
        /// A float32 partial sum widened to float64, its halves added where there are 8 lanes.
        @inline(__always) func widen(_ v: Lanes) -> Wide {
            #if FTQ_AVX2
            return Wide(v.lowHalf) + Wide(v.highHalf)
            #else
            return Wide(v)
            #endif
        }
        precondition(a.count == b.count)
        let n = a.count
        let width = Lanes.scalarCount
        let run = width * 8
        let full = n / run * run
        guard full > 0 else { return referenceAdd(a, b) }
        let pa = UnsafeRawPointer(a.baseAddress!), pb = UnsafeRawPointer(b.baseAddress!)
        var sq = Wide(), sa = Wide(), sb = Wide(), ab = Wide(), ad = Wide(), aa = Wide()
        // The running maximum as float32, lowered by a relative 2^-22 so that a run whose exact
        // maximum ties or beats it but rounds below it in float32 is still rescanned.
        var best = (value: maxAbs, index: maxAbsIndex)
        var bar: Float = best.index >= 0 ? Float(best.value) * (1 - 0x1p-22) : -1
        let absMask = Bits(repeating: 0x7fff_ffff)
        var i = 0
        while i < full {
            var fsq = Lanes(), fsa = Lanes(), fsb = Lanes(), fab = Lanes()
            var fad = Lanes(), faa = Lanes(), fmax = Lanes()
            var off = i * 4
            let stop = off + run * 4
            while off < stop {
                let x = pa.loadUnaligned(fromByteOffset: off, as: Lanes.self)
                let y = pb.loadUnaligned(fromByteOffset: off, as: Lanes.self)
                let d = y - x
                let absD = unsafeBitCast(unsafeBitCast(d, to: Bits.self) & absMask, to: Lanes.self)
                #if FTQ_AVX2
                // FMA (one rounding per product and sum): within the same bound.
                fsq.addProduct(d, d)
                fsa.addProduct(x, x)
                fsb.addProduct(y, y)
                fab.addProduct(x, y)
                #else
                fsq += d * d
                fsa += x * x
                fsb += y * y
                fab += x * y
                #endif
                fad += absD
                faa += unsafeBitCast(unsafeBitCast(x, to: Bits.self) & absMask, to: Lanes.self)
                fmax = fmax.replacing(with: absD, where: absD .> fmax)
                off += width * 4
            }
            sq += widen(fsq)
            sa += widen(fsa)
            sb += widen(fsb)
            ab += widen(fab)
            ad += widen(fad)
            aa += widen(faa)
            if any(fmax .>= Lanes(repeating: bar)) {
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
