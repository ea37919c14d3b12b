import Testing
@testable import FTQCore
@testable import FTQKernels

/// Fast quantizers agree with the scalar reference bit for bit.
@Suite struct FastQuantTests {
    @Test(arguments: [GGMLLegacyQuant.Q8_0, .Q4_0, .Q4_1])
    func fastMatchesReference(_ type: GGMLLegacyQuant) {
        var x: [Float] = []
        var s: UInt64 = 0x1234_5678
        func next() -> UInt64 { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s }
        for b in 0..<20_000 {
            let scale = Float(sign: .plus, exponent: Int(next() % 60) - 40, significand: 1)
            for _ in 0..<32 {
                switch b % 7 {
                case 0: x.append(0)
                case 1: x.append(Float(Int(next() % 255) - 127) / 2 * scale)  // exact halves after scaling
                case 3 where b % 14 == 3: x.append(next() % 3 == 0 ? -0.0 : 0.0)  // signed zeros
                case 4: x.append(Float(Int(next() % 33) - 16) * scale)  // ties of the signed maximum
                case 2: x.append(Float(bitPattern: UInt32(truncatingIfNeeded: next())))  // any pattern, NaN and inf included
                default: x.append(Float(Int64(bitPattern: next()) >> 40) * scale * 1e-6)
                }
            }
        }
        var fast = [UInt8](repeating: 0, count: x.count / 32 * type.blockBytes)
        var ref = fast
        x.withUnsafeBufferPointer { src in
            fast.withUnsafeMutableBytes { type.quantize(src, into: $0) }
            ref.withUnsafeMutableBytes { type.referenceQuantize(src, into: $0) }
        }
        let n = type.blockBytes
        let bad = (0..<(x.count / 32)).filter { fast[($0 * n)..<($0 * n + n)] != ref[($0 * n)..<($0 * n + n)] }
        #expect(bad.isEmpty, "\(bad.count) blocks differ, first \(bad.first ?? -1)")
    }

    /// The short float16 path equals FloatBits.f32ToF16 around every boundary it relies on and
    /// on a sweep of all exponents.
    @Test func shortFloat16PathMatches() {
        var patterns: [UInt32] = []
        for edge: UInt32 in [0x3880_0000, 0x477f_e000, 0x477f_efff, 0x477f_f000, 0x4780_0000, 0x387f_ffff, 0x3380_0000] {
            for d in -300...300 { patterns.append(UInt32(truncatingIfNeeded: Int64(edge) + Int64(d))) }
        }
        var s: UInt32 = 12345
        for _ in 0..<2_000_000 {
            s = s &* 1_664_525 &+ 1_013_904_223
            patterns.append(s)
        }
        let bad = (patterns + patterns.map { $0 | 0x8000_0000 }).filter { FastBlock.f16(Float(bitPattern: $0)) != FloatBits.f32ToF16($0) }
        #expect(bad.isEmpty, "\(bad.count) patterns differ, first \(String(bad.first ?? 0, radix: 16))")
    }
}
