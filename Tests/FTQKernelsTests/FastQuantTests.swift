import Testing
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
}
