import Testing
@testable import FTQCore

/// The vectorised conversions agree bit for bit with the scalar reference.
@Suite struct FastConversionTests {
    /// Special values at every boundary, then pseudo-random bit patterns of every kind.
    static func patterns() -> [UInt32] {
        var v: [UInt32] = [0, 0x8000_0000, 0x7f80_0000, 0xff80_0000, 0x7fc0_0000, 0x7f80_0001, 0xffc0_0001,
                           0x3880_0000, 0x387f_ffff, 0x3300_0000, 0x3300_0001, 0x477f_efff, 0x477f_f000, 0x4780_0000,
                           0x7f7f_ffff, 0x3f80_1000, 0x3f80_3000, 0x3f80_8000, 0x3f81_8000, 0x0000_0001]
        var x: UInt64 = 0x9e37_79b9_7f4a_7c15
        for _ in 0..<300_000 {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            v.append(UInt32(truncatingIfNeeded: x >> 16))
            // Also realistic weights: a normal-ish float around 0.02 in magnitude.
            let f = Float(Int32(truncatingIfNeeded: x) % 100_000) * 2e-7
            v.append(f.bitPattern)
        }
        return v
    }

    func check(_ from: DType, _ to: DType, _ reference: (UInt32) -> UInt16) {
        let input = Self.patterns()
        var out = [UInt16](repeating: 0, count: input.count)
        // Every offset mod 8, so that vector and tail paths both see every value.
        for start in 0..<8 {
            let n = input.count - start
            input.withUnsafeBytes { src in
                out.withUnsafeMutableBytes { dst in
                    DTypeConversion.convert(from: from, to: to, count: n,
                                            src: UnsafeRawBufferPointer(rebasing: src[(start * 4)...]), dst: dst)
                }
            }
            var bad = 0
            for k in 0..<n where out[k] != reference(input[start + k]) { bad += 1 }
            #expect(bad == 0, "\(from) -> \(to), start \(start): \(bad) mismatches")
        }
    }

    @Test func f32ToF16MatchesReference() { check(.F32, .F16, FloatBits.f32ToF16) }
    @Test func f32ToBF16MatchesReference() { check(.F32, .BF16, FloatBits.f32ToBF16) }

    @Test func bf16ToF32IsAShift() {
        let input = (0...UInt16.max).map { $0 }
        var out = [UInt32](repeating: 0, count: input.count)
        input.withUnsafeBytes { src in out.withUnsafeMutableBytes { DTypeConversion.convert(from: .BF16, to: .F32, count: input.count, src: src, dst: $0) } }
        #expect(zip(input, out).allSatisfy { FloatBits.bf16ToF32($0) == $1 })
    }
}
