import Testing
import FTQCore
@testable import FTQKernels

/// Every ranking rule of the fast 4-bit kernel against the reference on scaled values chosen to
/// break them: a sweep over the float32 patterns of [-1, 1], and the values within 64 ulps of
/// every threshold and of every bucket edge k / 16 - 1 of the bucket rule (formats/bnb-quants.md,
/// "Fast ranking"). Each block starts with 1 (so the scale is exactly 1 and the kernel ranks the
/// values as given).
@Suite struct BnBRankRuleTests {
    static func values(_ codec: BnB4BitCodec) -> [Float] {
        var v: [Float] = []
        var bits: UInt32 = 0
        while bits <= 0x3f80_0000 {  // 0 ... 1, both signs
            v.append(Float(bitPattern: bits))
            v.append(-Float(bitPattern: bits))
            bits += 1531
        }
        let centres = codec.thresholds + (0...32).map { Float($0) / 16 - 1 }
        for c in centres {
            var x = c, y = c
            for _ in 0..<64 {
                v += [x, y]
                x = x.nextUp
                y = y.nextDown
            }
        }
        return v.filter { $0 >= -1 && $0 <= 1 }
    }

    @Test(arguments: [BnB4BitType.nf4, .fp4])
    func everyRuleRanksLikeTheReference(_ type: BnB4BitType) {
        let codec = BnB4BitCodec(type: type, blocksize: 64)
        let v = Self.values(codec)
        // Blocks of 64: 1, then 63 values.
        var x: [Float] = []
        var k = 0
        while k < v.count {
            x.append(1)
            for j in 0..<63 { x.append(v[(k + j) % v.count]) }
            k += 63
        }
        let blocks = x.count / 64
        var want = [UInt8](repeating: 0, count: x.count / 2)
        var a0 = [Float](repeating: 0, count: blocks)
        x.withUnsafeBufferPointer { xp in
            want.withUnsafeMutableBytes { p in a0.withUnsafeMutableBufferPointer { codec.referenceQuantize(xp, isEnd: true, packed: p, absmax: $0) } }
        }
        for rule in BnB4BitFast.rules {
            var got = [UInt8](repeating: 0, count: x.count / 2)
            var a = [Float](repeating: 0, count: blocks)
            x.withUnsafeBufferPointer { xp in
                got.withUnsafeMutableBufferPointer { p in
                    a.withUnsafeMutableBufferPointer { BnB4BitFast.quantize(codec, xp.baseAddress!, blocks: blocks, packed: p.baseAddress!, absmax: $0.baseAddress!, rule: rule) }
                }
            }
            let bad = zip(got, want).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
            #expect(bad.isEmpty, "\(type) rule \(rule): \(bad.count) of \(got.count) bytes differ, first at \(bad.first ?? -1)")
        }
    }

    /// The bucket rule accepts NF4's thresholds and refuses FP4's (two lie 0.0052 apart).
    @Test func bucketRuleAdmitsNF4Only() {
        #expect(BnB4BitCodec(type: .nf4, blocksize: 64).bucketRule != nil)
        #expect(BnB4BitCodec(type: .fp4, blocksize: 64).bucketRule == nil)
    }
}

/// quantize(bf16:) (BF16 widened in registers) against quantize of the widened float32 values.
@Suite struct BnBBF16QuantizeTests {
    @Test(arguments: [BnB4BitType.nf4, .fp4], [32, 64, 4096])
    func sameBytesAsTheFloat32Path(_ type: BnB4BitType, _ bs: Int) {
        var rng = SplitMix(seed: UInt64(bs) &* 31 &+ (type == .nf4 ? 1 : 2))
        let codec = BnB4BitCodec(type: type, blocksize: bs)
        for n in [bs, 3 * bs, 3 * bs + 2, 5 * bs + 17] where n % 2 == 0 || n == 5 * bs + 17 {
            var h = (0..<n).map { _ in FloatBits.f32ToBF16(Float(rng.normal() * 0.03).bitPattern) }
            for i in stride(from: 0, to: n, by: 37) { h[i] = UInt16(truncatingIfNeeded: rng.next()) & 0x807f }  // zeros and subnormals
            if n > bs { for i in 0..<bs { h[i] = 0 } }  // an all-zero block
            let f = h.map { Float(bitPattern: UInt32($0) << 16) }
            var p1 = [UInt8](repeating: 0, count: BnB4BitCodec.packedBytes(n)), p2 = p1
            var a1 = [Float](repeating: 0, count: codec.blocks(n)), a2 = a1
            f.withUnsafeBufferPointer { x in p1.withUnsafeMutableBytes { p in a1.withUnsafeMutableBufferPointer { codec.referenceQuantize(x, isEnd: true, packed: p, absmax: $0) } } }
            h.withUnsafeBufferPointer { x in p2.withUnsafeMutableBytes { p in a2.withUnsafeMutableBufferPointer { codec.quantize(bf16: x, isEnd: true, packed: p, absmax: $0) } } }
            #expect(p1 == p2 && a1.map(\.bitPattern) == a2.map(\.bitPattern), "\(type) bs \(bs) n \(n)")
            for rule in BnB4BitFast.rules where n >= bs {
                var p3 = [UInt8](repeating: 0, count: n / bs * bs / 2)
                var a3 = [Float](repeating: 0, count: n / bs)
                h.withUnsafeBufferPointer { x in
                    p3.withUnsafeMutableBufferPointer { p in
                        a3.withUnsafeMutableBufferPointer { BnB4BitFast.quantize(codec, bf16: x.baseAddress!, blocks: n / bs, packed: p.baseAddress!, absmax: $0.baseAddress!, rule: rule) }
                    }
                }
                #expect(p3[...] == p1[0..<p3.count] && a3.map(\.bitPattern)[...] == a1.map(\.bitPattern)[0..<a3.count], "\(type) bs \(bs) n \(n) \(rule)")
            }
        }
    }
}
