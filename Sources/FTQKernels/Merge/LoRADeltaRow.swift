/// One row of B @ A as PEFT's merge computes it on the CPU (formats/lora-merge.md, "Delta"):
/// acc[i] = fma(b[r-1], A[r-1, i], ... fma(b[1], A[1, i], fma(b[0], A[0, i], 0))), each step a
/// float32 fused multiply-add rounded once, k in order. The fast kernel is vectorized across
/// columns (each lane runs the same steps in the same order as the reference) and gives the
/// reference's bits for every input; tests check it against ``reference(b:a:rank:columns:into:)``.
public enum LoRADeltaRow {
    /// The specification: `Float.addingProduct` (one rounding) per step, k in order.
    public static func reference(b: UnsafePointer<Float>, a: UnsafePointer<Float>, rank r: Int, columns n: Int,
                                 into acc: UnsafeMutablePointer<Float>) {
        reference(b: b, a: a, rank: r, stride: n, from: 0, to: n, into: acc)
    }

    /// The reference for columns `lo ..< hi` of a row; `stride` is A's row length.
    static func reference(b: UnsafePointer<Float>, a: UnsafePointer<Float>, rank r: Int, stride: Int, from lo: Int, to hi: Int,
                          into acc: UnsafeMutablePointer<Float>) {
        for i in lo..<hi { acc[i] = 0 }
        for k in 0..<r {
            let bk = b[k], row = a + k * stride
            for i in lo..<hi { acc[i] = acc[i].addingProduct(bk, row[i]) }
        }
    }

    /// The same bits as ``reference(b:a:rank:columns:into:)``, faster: `b` is one row of
    /// lora_B (r values), `a` is lora_A [r, n], `acc` receives the n sums.
    /// `aSmallest`, ``smallestMagnitude(_:_:)`` of A, spares rows of the same A that scan.
    public static func compute(b: UnsafePointer<Float>, a: UnsafePointer<Float>, rank r: Int, columns n: Int,
                               into acc: UnsafeMutablePointer<Float>, aSmallest: Float? = nil) {
        #if FTQ_AVX2
        fusedTiles(b: b, a: a, rank: r, columns: n, into: acc)
        #else
        emulatedTiles(b: b, a: a, rank: r, columns: n, into: acc, aSmallest: aSmallest ?? smallestMagnitude(a, r * n))
        #endif
    }

    #if FTQ_AVX2
    /// AVX2 + FMA builds: the hardware's fused multiply-add (vfmadd, one rounding, IEEE) on 8
    /// lanes; 64 columns per tile keep their 8 accumulators in registers over k (enough
    /// independent chains to cover the instruction's latency).
    static func fusedTiles(b: UnsafePointer<Float>, a: UnsafePointer<Float>, rank r: Int, columns n: Int,
                           into acc: UnsafeMutablePointer<Float>) {
        typealias V = SIMD8<Float>
        let pa = UnsafeRawPointer(a), pc = UnsafeMutableRawPointer(acc)
        let rowBytes = n &* 4
        var i = 0
        while i &+ 64 <= n {
            var c0 = V(), c1 = V(), c2 = V(), c3 = V(), c4 = V(), c5 = V(), c6 = V(), c7 = V()
            var off = i &* 4
            for k in 0..<r {
                let bk = V(repeating: b[k])
                c0.addProduct(bk, pa.loadUnaligned(fromByteOffset: off, as: V.self))
                c1.addProduct(bk, pa.loadUnaligned(fromByteOffset: off &+ 32, as: V.self))
                c2.addProduct(bk, pa.loadUnaligned(fromByteOffset: off &+ 64, as: V.self))
                c3.addProduct(bk, pa.loadUnaligned(fromByteOffset: off &+ 96, as: V.self))
                c4.addProduct(bk, pa.loadUnaligned(fromByteOffset: off &+ 128, as: V.self))
                c5.addProduct(bk, pa.loadUnaligned(fromByteOffset: off &+ 160, as: V.self))
                c6.addProduct(bk, pa.loadUnaligned(fromByteOffset: off &+ 192, as: V.self))
                c7.addProduct(bk, pa.loadUnaligned(fromByteOffset: off &+ 224, as: V.self))
                off &+= rowBytes
            }
            let o = i &* 4
            pc.storeBytes(of: c0, toByteOffset: o, as: V.self)
            pc.storeBytes(of: c1, toByteOffset: o &+ 32, as: V.self)
            pc.storeBytes(of: c2, toByteOffset: o &+ 64, as: V.self)
            pc.storeBytes(of: c3, toByteOffset: o &+ 96, as: V.self)
            pc.storeBytes(of: c4, toByteOffset: o &+ 128, as: V.self)
            pc.storeBytes(of: c5, toByteOffset: o &+ 160, as: V.self)
            pc.storeBytes(of: c6, toByteOffset: o &+ 192, as: V.self)
            pc.storeBytes(of: c7, toByteOffset: o &+ 224, as: V.self)
            i &+= 64
        }
        while i + 8 <= n {
            var c0 = V()
            var off = i * 4
            for k in 0..<r {
                c0.addProduct(V(repeating: b[k]), pa.loadUnaligned(fromByteOffset: off, as: V.self))
                off += rowBytes
            }
            pc.storeBytes(of: c0, toByteOffset: i * 4, as: V.self)
            i += 8
        }
        if i < n { reference(b: b, a: a, rank: r, stride: n, from: i, to: n, into: acc) }
    }
    #endif

    /// Portable builds (x86-64 without FMA, where `Float.addingProduct` is a call to libm's
    /// fmaf per element): each step is emulated exactly in float64 on 16 columns at a time.
    /// The product of two floats is exact in float64 (48 significant bits, exponents within
    /// float64's normal range), so s = float64(acc) + p is the exact sum x rounded once to 53
    /// bits, and float32(s) is fma's result x rounded to 24 bits unless rounding twice differs
    /// from rounding once. That needs s to fall exactly on a midpoint between two floats: every
    /// such midpoint is a float64 M, and x < M implies s <= M (rounding is monotonic), so an s
    /// that is not a midpoint lies on x's side of every midpoint. Each step therefore flags
    /// - an s whose low 29 significand bits are 1 followed by 28 zeros (a midpoint between two
    ///   normal floats, and the overflow threshold 2^128 - 2^103), and
    /// - a nonzero |s| below 2^-126 (float32's subnormal range, whose midpoints sit elsewhere),
    ///   unless no s can be there (``tame(_:_:)``);
    /// and a tile with any flag, or any sum that is not finite (NaN payloads, infinities), is
    /// computed again by the reference. Unflagged tiles are fma's bits by the argument above.
    static func emulatedTiles(b: UnsafePointer<Float>, a: UnsafePointer<Float>, rank r: Int, columns n: Int,
                              into acc: UnsafeMutablePointer<Float>, aSmallest: Float) {
        if tame(smallestMagnitude(b, r), aSmallest) {
            emulatedTiles(b: b, a: a, rank: r, columns: n, into: acc, MidpointsOnly.self)
        } else {
            emulatedTiles(b: b, a: a, rank: r, columns: n, into: acc, MidpointsAndTiny.self)
        }
    }

    /// The smallest nonzero magnitude among `x` (infinity when every value is zero; NaNs are
    /// skipped: they make the sums NaN, which sends their tiles to the reference).
    public static func smallestMagnitude(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
        var m = Float.infinity
        for i in 0..<count {
            let v = abs(x[i])
            m = v < m && v != 0 ? v : m
        }
        return m
    }

    /// True when every sum of the row is zero or at least 2^-126 in magnitude: every nonzero
    /// float f is a multiple of 2^(exponent(f) - 23), so with exponent(b) + exponent(a) >= -80
    /// for the smallest nonzero b and a, every product is a multiple of 2^-126; so is every
    /// sum, every float64 rounding of one (exact below 2^-73, onto a grid of multiples above)
    /// and every float32 rounding (exact below 2^-102, likewise), by induction over k.
    static func tame(_ bSmallest: Float, _ aSmallest: Float) -> Bool {
        !bSmallest.isFinite || !aSmallest.isFinite || bSmallest.exponent + aSmallest.exponent >= -80
    }

    /// Which sums the emulation flags (a type parameter, so that each variant is compiled
    /// without the other's test).
    protocol Flags { static var tiny: Bool { get } }
    enum MidpointsOnly: Flags { static var tiny: Bool { false } }
    enum MidpointsAndTiny: Flags { static var tiny: Bool { true } }

    static func emulatedTiles<T: Flags>(b: UnsafePointer<Float>, a: UnsafePointer<Float>, rank r: Int, columns n: Int,
                                        into acc: UnsafeMutablePointer<Float>, _: T.Type) {
        typealias D = SIMD2<Double>
        typealias F = SIMD2<Float>
        typealias Bits = SIMD4<Int32>
        // Per 64-bit lane, little-endian halves (low word, high word):
        // low word & 0x1FFF_FFFF == 0x1000_0000 is a midpoint; the high word never matches.
        let keep = Bits(0x1FFF_FFFF, 0x7FF0_0000, 0x1FFF_FFFF, 0x7FF0_0000)
        let midpoint = Bits(0x1000_0000, -1, 0x1000_0000, -1)
        // High word: its exponent field e (shifted) + 0x7FFF_FFFF is, as a signed number,
        // below `tinyBound` exactly when 0 < e < 897 << 20 (0 < |s| < 2^-126). The low word
        // adds nothing and never passes (Int32.min is below everything).
        let bias = Bits(0, 0x7FFF_FFFF, 0, 0x7FFF_FFFF)
        let tinyBound = Bits(Int32.min, Int32.min + (897 << 20) - 1, Int32.min, Int32.min + (897 << 20) - 1)
        @inline(__always) func flags(_ s: D) -> Bits {
            let t = unsafeBitCast(s, to: Bits.self) & keep
            var f = unsafeBitCast(t .== midpoint, to: Bits.self)
            if T.tiny { f |= unsafeBitCast((t &+ bias) .< tinyBound, to: Bits.self) }
            return f
        }
        @inline(__always) func load(_ off: Int) -> D { D(pa.loadUnaligned(fromByteOffset: off, as: F.self)) }
        let pa = UnsafeRawPointer(a), pc = UnsafeMutableRawPointer(acc)
        let rowBytes = n &* 4
        var i = 0
        while i &+ 16 <= n {
            var c0 = D(), c1 = D(), c2 = D(), c3 = D(), c4 = D(), c5 = D(), c6 = D(), c7 = D()
            var bad = Bits()
            var off = i &* 4
            for k in 0..<r {
                let bk = D(repeating: Double(b[k]))
                let s0 = c0 + bk * load(off), s1 = c1 + bk * load(off &+ 8)
                let s2 = c2 + bk * load(off &+ 16), s3 = c3 + bk * load(off &+ 24)
                let s4 = c4 + bk * load(off &+ 32), s5 = c5 + bk * load(off &+ 40)
                let s6 = c6 + bk * load(off &+ 48), s7 = c7 + bk * load(off &+ 56)
                bad |= flags(s0) | flags(s1) | flags(s2) | flags(s3) | flags(s4) | flags(s5) | flags(s6) | flags(s7)
                c0 = D(F(s0)); c1 = D(F(s1)); c2 = D(F(s2)); c3 = D(F(s3))
                c4 = D(F(s4)); c5 = D(F(s5)); c6 = D(F(s6)); c7 = D(F(s7))
                off &+= rowBytes
            }
            // Not finite: x - x is NaN exactly for infinities and NaNs (and NaN != 0).
            let d = (c0 - c0) + (c1 - c1) + (c2 - c2) + (c3 - c3) + (c4 - c4) + (c5 - c5) + (c6 - c6) + (c7 - c7)
            if bad != Bits() || d != D() {
                reference(b: b, a: a, rank: r, stride: n, from: i, to: i &+ 16, into: acc)
            } else {
                let o = i &* 4
                pc.storeBytes(of: F(c0), toByteOffset: o, as: F.self)
                pc.storeBytes(of: F(c1), toByteOffset: o &+ 8, as: F.self)
                pc.storeBytes(of: F(c2), toByteOffset: o &+ 16, as: F.self)
                pc.storeBytes(of: F(c3), toByteOffset: o &+ 24, as: F.self)
                pc.storeBytes(of: F(c4), toByteOffset: o &+ 32, as: F.self)
                pc.storeBytes(of: F(c5), toByteOffset: o &+ 40, as: F.self)
                pc.storeBytes(of: F(c6), toByteOffset: o &+ 48, as: F.self)
                pc.storeBytes(of: F(c7), toByteOffset: o &+ 56, as: F.self)
            }
            i &+= 16
        }
        if i < n { reference(b: b, a: a, rank: r, stride: n, from: i, to: n, into: acc) }
    }
}
