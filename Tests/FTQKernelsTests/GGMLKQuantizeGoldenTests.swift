import Foundation
import Testing
@testable import FTQCore
@testable import FTQKernels

/// ftq's Q4_K and Q6_K quantizers against ggml's own (ggml_quantize_chunk without an importance
/// matrix, libggml-base 0.25.3; tools/golden/make_ggml_kquant_quantize.py,
/// testdata/golden/ggml-kquants-quantize/README.md): the same bytes for every case, from the
/// scalar reference and from the lane-parallel kernel.
@Suite struct GGMLKQuantizeGoldenTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let dir = root.appendingPathComponent("testdata/golden/ggml-kquants-quantize")

    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var rows: Int
        var perRow: Int
        var type: GGMLKQuant
        /// FNV-1a 64 of ggml's own dequantization of its bytes (little-endian float32).
        var deqFNV: UInt64
        var description: String { "\(name) \(type.rawValue)" }
    }

    static func cases() -> [Case] {
        guard let data = try? Data(contentsOf: dir.appendingPathComponent("cases.json")),
              let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
              let list = json["cases"] as? [[String: Any]] else { return [] }
        return list.flatMap { c -> [Case] in
            let types = c["types"] as? [String: [String: Any]] ?? [:]
            return types.keys.sorted().compactMap { t in
                guard let type = GGMLKQuant(rawValue: t),
                      let fnv = UInt64(types[t]?["deq_fnv1a64"] as? String ?? "", radix: 16) else { return nil }
                return Case(name: c["name"] as! String, rows: c["rows"] as! Int, perRow: c["n_per_row"] as! Int,
                            type: type, deqFNV: fnv)
            }
        }
    }

    static func bytes(_ file: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: dir.appendingPathComponent(file)))
    }

    static func floats(_ file: String) throws -> [Float] {
        let b = try bytes(file)
        return b.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    static func quantize(_ t: GGMLKQuant, _ x: [Float], reference: Bool) -> [UInt8] {
        var q = [UInt8](repeating: 0xAA, count: x.count / 256 * t.blockBytes)
        x.withUnsafeBufferPointer { src in
            q.withUnsafeMutableBytes { reference ? t.referenceQuantize(src, into: $0) : t.quantize(src, into: $0) }
        }
        return q
    }

    static func dequantize(_ t: GGMLKQuant, _ q: [UInt8]) -> [Float] {
        var y = [Float](repeating: .nan, count: q.count / t.blockBytes * 256)
        q.withUnsafeBytes { src in y.withUnsafeMutableBufferPointer { t.dequantize(src, into: $0) } }
        return y
    }

    /// FNV-1a 64 of the values' little-endian float32 bytes.
    static func fnv1a64(_ values: [Float]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for v in values {
            var bits = v.bitPattern
            for _ in 0..<4 {
                h = (h ^ UInt64(bits & 0xff)) &* 0x0000_0100_0000_01b3
                bits >>= 8
            }
        }
        return h
    }

    /// "block b byte k: ftq xx, ggml yy" for the first differing byte.
    static func firstDifference(_ got: [UInt8], _ want: [UInt8], _ t: GGMLKQuant) -> String {
        guard let k = zip(got, want).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset else {
            return got.count == want.count ? "none" : "lengths \(got.count) and \(want.count)"
        }
        let blocks = Set(got.indices.filter { $0 < want.count && got[$0] != want[$0] }.map { $0 / t.blockBytes })
        return "block \(k / t.blockBytes) byte \(k % t.blockBytes): ftq \(String(got[k], radix: 16)), ggml \(String(want[k], radix: 16)); \(blocks.count) blocks differ"
    }

    @Test func everyCaseHasBothTypes() {
        let cases = Self.cases()
        #expect(cases.count == 2 * 15, "cases: \(cases)")
        #expect(Set(cases.map(\.type)) == [.Q4_K, .Q6_K])
        for t in GGMLKQuant.allCases { #expect(t.canQuantize == (t == .Q4_K || t == .Q6_K), "\(t)") }
    }

    @Test(arguments: cases())
    func referenceIsByteIdentical(_ c: Case) throws {
        let x = try Self.floats("\(c.name).f32")
        let want = try Self.bytes("\(c.name).\(c.type.rawValue).bin")
        #expect(x.count == c.rows * c.perRow && x.count % 256 == 0)
        let got = Self.quantize(c.type, x, reference: true)
        let identical = got == want
        #expect(identical, "\(c): \(Self.firstDifference(got, want, c.type))")
    }

    @Test(arguments: cases())
    func quantizeIsByteIdentical(_ c: Case) throws {
        let x = try Self.floats("\(c.name).f32")
        let want = try Self.bytes("\(c.name).\(c.type.rawValue).bin")
        let got = Self.quantize(c.type, x, reference: false)
        let identical = got == want
        #expect(identical, "\(c): \(Self.firstDifference(got, want, c.type))")
        // Row by row gives the same bytes: blocks are quantized on their own.
        var rowwise: [UInt8] = []
        for r in 0..<c.rows { rowwise += Self.quantize(c.type, Array(x[(r * c.perRow)..<((r + 1) * c.perRow)]), reference: false) }
        let rowwiseIdentical = rowwise == got
        #expect(rowwiseIdentical)
        // What ftq's quantizer wrote dequantizes to what the golden bytes dequantize to, and to
        // what ggml's own dequantizer gave.
        let y = Self.dequantize(c.type, got)
        let yGolden = Self.dequantize(c.type, want)
        let sameValues = y.map(\.bitPattern) == yGolden.map(\.bitPattern)
        #expect(sameValues)
        #expect(Self.fnv1a64(y) == c.deqFNV, "\(c): FNV-1a 64 of the dequantized values \(String(Self.fnv1a64(y), radix: 16)), ggml \(String(c.deqFNV, radix: 16))")
    }

    /// The quantizers do what they are for: on ordinary weights the round trip is close.
    @Test(arguments: [GGMLKQuant.Q4_K, .Q6_K])
    func roundTripErrorIsSmall(_ t: GGMLKQuant) throws {
        let x = try Self.floats("laplace.f32")
        let y = Self.dequantize(t, Self.quantize(t, x, reference: false))
        var err: Double = 0, energy: Double = 0
        for (a, b) in zip(x, y) {
            err += Double(a - b) * Double(a - b)
            energy += Double(a) * Double(a)
        }
        let relative = (err / energy).squareRoot()
        #expect(relative < (t == .Q4_K ? 0.12 : 0.03), "\(t): relative RMS error \(relative)")
    }

    /// The lane-parallel kernel against the reference on more blocks than the goldens hold:
    /// seeded data of many shapes and scales, including sub-blocks that are flat, one-sided,
    /// tiny or zero, ties, NaN and infinities, in an odd number of blocks.
    @Test(arguments: [GGMLKQuant.Q4_K, .Q6_K])
    func kernelMatchesReference(_ t: GGMLKQuant) {
        var state: UInt64 = 0x9e37_79b9_7f4a_7c15
        func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 11
        }
        func uniform() -> Float { Float(Double(next()) / Double(1 << 53)) * 2 - 1 }
        let blocks = 611   // odd: the kernel takes blocks in pairs
        var x = [Float](repeating: 0, count: blocks * 256)
        for b in 0..<blocks {
            let scale = Float(pow(10.0, Double(b % 17) - 8))   // 1e-8 ... 1e8
            for e in 0..<256 {
                var v = uniform() * scale
                switch (b / 17) % 9 {
                case 1: v = abs(v)                                        // positive only
                case 2: v = -abs(v)                                       // negative only
                case 3: v = (v * 4 / scale).rounded() * scale / 4         // a coarse grid: ties
                case 4: if (e / 32) % 3 == 0 { v = scale / 2 }            // flat sub-blocks
                case 5: if (e / 16) % 2 == 1 { v = 0 }                    // zero groups
                case 6: v = e % 37 == 0 ? scale * 50 : v * 0.01           // outliers
                case 7: v = Float(bitPattern: UInt32(truncatingIfNeeded: next()) & 0x807f_ffff) // subnormals
                case 8: if e == (b * 7) % 256 { v = [Float.nan, .infinity, -.infinity, -Float.nan][b % 4] } // NaN, inf
                default: break
                }
                x[b * 256 + e] = v
            }
        }
        let ref = Self.quantize(t, x, reference: true)
        let fast = Self.quantize(t, x, reference: false)
        let identical = fast == ref
        #expect(identical, "\(t): \(Self.firstDifference(fast, ref, t))")
    }
}
