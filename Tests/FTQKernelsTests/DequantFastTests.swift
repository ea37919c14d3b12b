import Testing
@testable import FTQCore
@testable import FTQKernels

/// The dequantizers that GGMLDequantizer hands out (vectorised for some types) against the
/// scalar references, bit for bit, on random blocks whose scales take every kind of float16:
/// normal, subnormal, zero, infinite and NaN.
@Suite struct DequantFastTests {
    static func blocks(_ count: Int, bytes: Int, scaleOffsets: [Int], seed: UInt64) -> [UInt8] {
        var rng = SplitMix(seed: seed)
        var q = (0..<(count * bytes)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let specials: [UInt16] = [0x0000, 0x8000, 0x0001, 0x03ff, 0x7c00, 0xfc00, 0x7e00, 0x3c00, 0x7bff]
        for b in 0..<count {
            for off in scaleOffsets {
                let h = b % 3 == 0 ? specials[(b / 3 + off) % specials.count] : UInt16(truncatingIfNeeded: rng.next())
                q[b * bytes + off] = UInt8(h & 0xff)
                q[b * bytes + off + 1] = UInt8(h >> 8)
            }
        }
        return q
    }

    static func same(_ a: [Float], _ b: [Float]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern }
    }

    @Test(arguments: ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"])
    func kernelMatchesReference(_ name: String) throws {
        let g = try #require(GGMLType.named(name))
        let kernel = try #require(GGMLDequantizer.kernel(for: g))
        let offsets: [Int]
        switch name {
        case "Q4_1", "Q5_1", "Q4_K", "Q5_K": offsets = [0, 2]
        case "Q2_K": offsets = [80, 82]
        case "Q3_K": offsets = [108]
        case "Q6_K": offsets = [208]
        default: offsets = [0]
        }
        let n = 300
        let q = Self.blocks(n, bytes: g.typeSize, scaleOffsets: offsets, seed: UInt64(g.typeSize))
        var fast = [Float](repeating: 1, count: n * g.blockSize), ref = fast
        q.withUnsafeBytes { qq in
            fast.withUnsafeMutableBufferPointer { kernel(qq, $0) }
            ref.withUnsafeMutableBufferPointer { y in
                if let l = GGMLLegacyQuant(rawValue: name) { l.dequantize(qq, into: y) } else { GGMLKQuant(rawValue: name)!.dequantize(qq, into: y) }
            }
        }
        #expect(Self.same(fast, ref), "\(name)")
    }
}
