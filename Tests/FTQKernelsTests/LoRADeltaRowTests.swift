import Testing
@testable import FTQKernels

/// The fast LoRA delta (LoRADeltaRow.compute: hardware FMA in AVX2 builds, an exact float64
/// emulation in portable builds) against the reference, a sequential Float.addingProduct per
/// element: bit for bit, on random rows, on steps built to make float64 rounding land exactly on
/// a float32 midpoint (where rounding twice differs from fma), in the subnormal range, and with
/// infinities and NaNs.
@Suite struct LoRADeltaRowTests {
    struct Rng {
        var s: UInt64
        mutating func next() -> UInt64 {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            return s
        }
        /// Sign, 24-bit significand and an exponent in `exps`.
        mutating func float(_ exps: ClosedRange<Int>) -> Float {
            let x = next()
            let sig = Float(Int((x >> 40) | 0x80_0000)) * 0x1p-23
            let e = exps.lowerBound + Int((x >> 8) % UInt64(exps.count))
            return (x & 1 == 0 ? sig : -sig) * Float(sign: .plus, exponent: e, significand: 1)
        }
    }

    /// Every column of compute against the reference, bit for bit.
    static func check(b: [Float], a: [Float], rank r: Int, columns n: Int, _ what: String) -> Int {
        var want = [Float](repeating: 0, count: n), got = [Float](repeating: 1, count: n)
        b.withUnsafeBufferPointer { bp in
            a.withUnsafeBufferPointer { ap in
                LoRADeltaRow.reference(b: bp.baseAddress!, a: ap.baseAddress!, rank: r, columns: n, into: &want)
                LoRADeltaRow.compute(b: bp.baseAddress!, a: ap.baseAddress!, rank: r, columns: n, into: &got)
            }
        }
        var bad = 0
        for i in 0..<n where want[i].bitPattern != got[i].bitPattern {
            if bad < 3 { Issue.record("\(what) column \(i): \(got[i]) vs \(want[i])") }
            bad += 1
        }
        return bad
    }

    @Test(arguments: [1, 2, 7, 16, 33])
    func randomRows(_ r: Int) {
        var g = Rng(s: UInt64(r) * 977)
        for n in [1, 7, 8, 9, 31, 32, 33, 40, 100, 257] {
            for exps in [-8...(-5), -30...10, -80...60] {
                let a = (0..<(r * n)).map { _ in g.float(exps) }, b = (0..<r).map { _ in g.float(exps) }
                #expect(Self.check(b: b, a: a, rank: r, columns: n, "r \(r) n \(n) exps \(exps)") == 0)
            }
        }
    }

    /// Many random rows of adapter-like values (about 0.01, one row of 4096 columns per draw).
    @Test func manyAdapterLikeRows() {
        var g = Rng(s: 5)
        for _ in 0..<64 {
            let a = (0..<(16 * 4096)).map { _ in g.float(-10...(-5)) }, b = (0..<16).map { _ in g.float(-10...(-5)) }
            #expect(Self.check(b: b, a: a, rank: 16, columns: 4096, "adapter-like") == 0)
        }
    }

    /// Values with few significant bits (bf16-like): sums are often exact, and often halfway.
    @Test func shortSignificands() {
        var g = Rng(s: 11)
        for _ in 0..<200 {
            let a = (0..<(8 * 64)).map { _ in Float(bitPattern: g.float(-3...3).bitPattern & 0xFFFF_0000) }
            let b = (0..<8).map { _ in Float(bitPattern: g.float(-3...3).bitPattern & 0xFFFF_0000) }
            #expect(Self.check(b: b, a: a, rank: 8, columns: 64, "short") == 0)
        }
    }

    /// Integers B, A in [2^23, 2^24) with B * A = 2^47 + d, 0 < |d| < 2^16: b * a is then
    /// 2^-24 (in units where c = 1) plus a part far below float64's precision, so float64 rounds
    /// c + b * a exactly onto a float32 midpoint and rounding it again to float32 goes the wrong way
    /// half the time.
    static func nearPowerProducts(_ count: Int) -> [(b: Int, a: Int, d: Int)] {
        var out: [(Int, Int, Int)] = []
        var g = Rng(s: 99)
        while out.count < count {
            let bi = Int(g.next() >> 41) | (1 << 23)
            for a in [((1 << 47) + bi - 1) / bi, (1 << 47) / bi] where a >= 1 << 23 && a < 1 << 24 {
                let d = bi * a - (1 << 47)
                if d != 0 && abs(d) < 1 << 16 { out.append((bi, a, d)) }
            }
        }
        return out
    }

    /// Rank-2 rows: step 0 puts c (1 or 1 + 2^-23, times 2^e, either sign) into the accumulator,
    /// step 1 adds b * a whose float64 sum is a float32 midpoint; across exponents from normal
    /// to subnormal float32 results, in every lane position.
    @Test func midpointsAfterFloat64Rounding() {
        let cases = Self.nearPowerProducts(64)
        var checked = 0
        for (bi, ai, _) in cases {
            for e in [0, 20, -20, -100, -120, -126, -127, -135, 60, 100] {
                for cOdd in [false, true] {
                    for neg in [false, true] {
                        let c = (cOdd ? 1 + 0x1p-23 : Float(1)) * Float(sign: neg ? .minus : .plus, exponent: e, significand: 1)
                        guard c != 0, c.isFinite else { continue }
                        // b in [1, 2); a = A 2^-48 2^e, split so both are normal floats where possible.
                        let b = Float(bi) * 0x1p-23 * Float(sign: neg ? .minus : .plus, exponent: e / 2, significand: 1)
                        let a = Float(ai) * 0x1p-48 * Float(sign: .plus, exponent: e - e / 2, significand: 1)
                        // 12 columns: lanes 0..7 of one tile and 4 of the tail, each a variant.
                        let n = 12
                        var arow0 = [Float](repeating: 0, count: n), arow1 = [Float](repeating: 0, count: n)
                        for i in 0..<n {
                            arow0[i] = c
                            arow1[i] = i % 3 == 0 ? a : i % 3 == 1 ? -a : a * 2
                        }
                        #expect(Self.check(b: [1, b], a: arow0 + arow1, rank: 2, columns: n, "B \(bi) A \(ai) e \(e) odd \(cOdd) neg \(neg)") == 0)
                        checked += 1
                    }
                }
            }
        }
        #expect(checked > 1000)
    }

    /// The same in float32's subnormal range, whose grid is 2^-149: c = 2^-127 (+ 2^-149), and
    /// b * a = 2^-150 + d 2^-197 (b = B 2^-83, a = A 2^-114), so float64's sum is a multiple of
    /// 2^-149 plus exactly 2^-150.
    @Test func subnormalMidpoints() {
        var differ = 0
        for (bi, ai, _) in Self.nearPowerProducts(64) {
            for c: Float in [0x1p-127, 0x1p-127 + 0x1p-149, -0x1p-127, 0x1p-130 + 0x1p-149, 0x1p-127 * 1.5] {
                for sign: Float in [1, -1] {
                    let b = sign * Float(bi) * 0x1p-83, a = Float(ai) * 0x1p-114
                    if Float(Double(c) + Double(b) * Double(a)) != c.addingProduct(b, a) { differ += 1 }
                    let n = 9
                    let arow0 = [Float](repeating: c, count: n), arow1 = (0..<n).map { $0 % 2 == 0 ? a : -a }
                    #expect(Self.check(b: [1, b], a: arow0 + arow1, rank: 2, columns: n, "subnormal B \(bi) A \(ai) c \(c)") == 0)
                }
            }
        }
        #expect(differ > 20)
    }

    /// That construction really is hard: rounding c + b * a in float64 then float32 differs from
    /// fma for some of these cases (so the emulation's midpoint check is exercised).
    @Test func hardCasesAreHard() {
        var differ = 0
        for (bi, ai, _) in Self.nearPowerProducts(64) {
            for cOdd in [false, true] {
                let c: Float = cOdd ? 1 + 0x1p-23 : 1
                let b = Float(bi) * 0x1p-23, a = Float(ai) * 0x1p-48
                if Float(Double(c) + Double(b) * Double(a)) != c.addingProduct(b, a) { differ += 1 }
            }
        }
        #expect(differ > 20)
    }

    @Test func infinitiesAndNaNs() {
        let specials: [Float] = [.infinity, -.infinity, .nan, Float(bitPattern: 0x7FC0_1234), Float(bitPattern: 0xFFA0_0001),
                                 .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 0x1p100, 0, -0.0, .leastNonzeroMagnitude]
        var g = Rng(s: 3)
        for round in 0..<300 {
            let r = 1 + round % 5, n = 8 + round % 9
            var a = (0..<(r * n)).map { _ in g.float(-10...10) }, b = (0..<r).map { _ in g.float(-10...10) }
            for _ in 0..<(1 + round % 3) {
                let s = specials[Int(g.next() >> 33) % specials.count]
                if g.next() & 1 == 0 { a[Int(g.next() >> 33) % a.count] = s } else { b[Int(g.next() >> 33) % b.count] = s }
            }
            #expect(Self.check(b: b, a: a, rank: r, columns: n, "specials \(round)") == 0)
        }
    }

    /// Zeros and signed zeros (a fresh adapter's lora_B is zero).
    @Test func zeros() {
        let a: [Float] = (0..<(4 * 16)).map { $0 % 3 == 0 ? -0.0 : $0 % 3 == 1 ? 0 : 0.25 }
        for b: [Float] in [[0, 0, 0, 0], [-0.0, -0.0, 0, -0.0], [-1, 0, 1, -0.0]] {
            #expect(Self.check(b: b, a: a, rank: 4, columns: 16, "zeros \(b)") == 0)
        }
    }

    /// LoRADelta.add against the plain per-element loop, with and without fan_in_fan_out,
    /// rounding of the delta, and threads.
    @Test(arguments: [false, true])
    func deltaAddMatchesPlainLoop(_ fanInFanOut: Bool) {
        var g = Rng(s: 17)
        let outF = 130, inF = 77, r = 5
        let a = (0..<(r * inF)).map { _ in g.float(-9...(-4)) }, b = (0..<(outF * r)).map { _ in g.float(-9...(-4)) }
        let w0 = (0..<(outF * inF)).map { _ in g.float(-7...(-3)) }
        let rows = fanInFanOut ? inF : outF, cols = fanInFanOut ? outF : inF
        let scaling: Float = 1.7
        let round: @Sendable (Float) -> Float = { Float(Float16($0)) }
        for rd in [nil, round] {
            var want = w0
            for o in 0..<outF {
                for i in 0..<inF {
                    var acc: Float = 0
                    for k in 0..<r { acc = acc.addingProduct(b[o * r + k], a[k * inF + i]) }
                    let idx = fanInFanOut ? i * cols + o : o * cols + i
                    let d = acc * scaling
                    want[idx] = want[idx] + (rd?(d) ?? d)
                }
            }
            for threads in [1, 2] {
                var w = w0
                w.withUnsafeMutableBufferPointer { wp in
                    a.withUnsafeBufferPointer { ap in
                        b.withUnsafeBufferPointer { bp in
                            LoRADelta.add(to: wp, rows: rows, cols: cols, a: ap, b: bp, rank: r, scaling: scaling,
                                          fanInFanOut: fanInFanOut, roundDelta: rd, threads: threads)
                        }
                    }
                }
                #expect(w.map(\.bitPattern) == want.map(\.bitPattern), "fan_in_fan_out \(fanInFanOut) round \(rd != nil) threads \(threads)")
            }
        }
    }

    /// addStreaming gives add's bits, hands every block over once and in order, and stops its
    /// workers when the consumer throws.
    @Test func streamingMatchesAdd() {
        struct Stop: Error {}
        var g = Rng(s: 23)
        let rows = 97, cols = 40, r = 3
        let a = (0..<(r * cols)).map { _ in g.float(-9...(-4)) }, b = (0..<(rows * r)).map { _ in g.float(-9...(-4)) }
        let w0 = (0..<(rows * cols)).map { _ in g.float(-7...(-3)) }
        for rd in [nil, { @Sendable (x: Float) in Float(Float16(x)) }] {
            var want = w0
            want.withUnsafeMutableBufferPointer { wp in
                a.withUnsafeBufferPointer { ap in
                    b.withUnsafeBufferPointer { LoRADelta.add(to: wp, rows: rows, cols: cols, a: ap, b: $0, rank: r, scaling: 0.5, fanInFanOut: false, roundDelta: rd) }
                }
            }
            for (threads, block) in [(1, 7), (2, 1), (2, 10), (3, 200)] {
                var w = w0
                var seen: [Range<Int>] = []
                w.withUnsafeMutableBufferPointer { wp in
                    a.withUnsafeBufferPointer { ap in
                        b.withUnsafeBufferPointer { bp in
                            try? LoRADelta.addStreaming(to: wp, rows: rows, cols: cols, a: ap, b: bp, rank: r, scaling: 0.5, roundDelta: rd,
                                                        threads: threads, blockRows: block) { seen.append($0) }
                        }
                    }
                }
                #expect(w.map(\.bitPattern) == want.map(\.bitPattern), "threads \(threads) block \(block)")
                #expect(seen.first?.lowerBound == 0 && seen.last?.upperBound == rows && zip(seen, seen.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
                var calls = 0
                let thrown: Bool = w.withUnsafeMutableBufferPointer { wp in
                    a.withUnsafeBufferPointer { ap in
                        b.withUnsafeBufferPointer { bp in
                            do {
                                try LoRADelta.addStreaming(to: wp, rows: rows, cols: cols, a: ap, b: bp, rank: r, scaling: 0.5,
                                                           threads: threads, blockRows: block) { _ in
                                    calls += 1
                                    if calls == 2 { throw Stop() }
                                }
                                return false
                            } catch { return true }
                        }
                    }
                }
                #expect(thrown == (rows > block) && calls == min(2, (rows + block - 1) / block))
            }
        }
    }
}
