import Foundation
import Testing
@testable import FTQCore
@testable import FTQKernels

/// ftq's Q2_K, Q3_K, Q4_K, Q5_K and Q6_K dequantizers against gguf-py's (bit-identical to
/// ggml's dequantize_row_q*_K; tools/golden/make_ggml_kquants.py,
/// testdata/golden/ggml-kquants/README.md): synthetic blocks, and every K-quant tensor of the
/// llama.cpp fixtures in testdata/llamacpp.
@Suite struct GGMLKQuantGoldenTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let dir = root.appendingPathComponent("testdata/golden/ggml-kquants")

    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var blocks: Int
        var type: GGMLKQuant
        /// How the expected output is stored: "f32" (every value) or "fnv1a64" (a hash per block).
        var deq: String
        var description: String { "\(name) \(type.rawValue)" }
    }

    struct Tensor: Sendable, CustomStringConvertible {
        var file: String
        var name: String
        var type: GGMLKQuant
        var offset: Int
        var nbytes: Int
        var elements: Int
        var fnv: UInt64
        var samples: [(Int, UInt32)]
        var description: String { "\(file) \(name) \(type.rawValue)" }
    }

    static func json(_ file: String) -> [String: Any]? {
        guard let data = try? Data(contentsOf: dir.appendingPathComponent(file)) else { return nil }
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    static func cases() -> [Case] {
        guard let list = json("cases.json")?["cases"] as? [[String: Any]] else { return [] }
        return list.flatMap { c -> [Case] in
            let blocks = c["blocks"] as? [String: Int] ?? [:]
            return blocks.keys.sorted().compactMap { t in
                GGMLKQuant(rawValue: t).map {
                    Case(name: c["name"] as! String, blocks: blocks[t]!, type: $0, deq: c["deq"] as! String)
                }
            }
        }
    }

    static func tensors() -> [Tensor] {
        guard let list = json("llamacpp.json")?["tensors"] as? [[String: Any]] else { return [] }
        return list.compactMap { t in
            guard let type = GGMLKQuant(rawValue: t["type"] as? String ?? ""),
                  let fnv = UInt64(t["fnv1a64"] as? String ?? "", radix: 16) else { return nil }
            let samples = (t["samples"] as? [[Any]] ?? []).compactMap { s -> (Int, UInt32)? in
                guard s.count == 2, let i = s[0] as? Int, let bits = UInt32(s[1] as? String ?? "", radix: 16) else { return nil }
                return (i, bits)
            }
            return Tensor(file: t["file"] as! String, name: t["name"] as! String, type: type,
                          offset: t["offset"] as! Int, nbytes: t["nbytes"] as! Int, elements: t["elements"] as! Int,
                          fnv: fnv, samples: samples)
        }
    }

    /// 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
    static func fnv1a64<C: Collection>(bytes: C, _ seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 where C.Element == UInt8 {
        var h = seed
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }

    /// FNV-1a 64 of the values' little-endian float32 bytes.
    static func fnv1a64<C: Collection>(_ values: C) -> UInt64 where C.Element == Float {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for v in values {
            let bits = v.bitPattern
            h = fnv1a64(bytes: [UInt8(bits & 0xff), UInt8((bits >> 8) & 0xff), UInt8((bits >> 16) & 0xff), UInt8(bits >> 24)], h)
        }
        return h
    }

    static func bytes(_ file: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: dir.appendingPathComponent(file)))
    }

    static func dequantize(_ t: GGMLKQuant, _ q: [UInt8]) -> [Float] {
        var y = [Float](repeating: .nan, count: q.count / t.blockBytes * 256)
        q.withUnsafeBytes { src in y.withUnsafeMutableBufferPointer { t.dequantize(src, into: $0) } }
        return y
    }

    @Test func fnvMatchesItsDefinition() {
        // The published FNV-1a 64 test vectors.
        #expect(Self.fnv1a64(bytes: [UInt8]()) == 0xcbf2_9ce4_8422_2325)
        #expect(Self.fnv1a64(bytes: Array("a".utf8)) == 0xaf63_dc4c_8601_ec8c)
        #expect(Self.fnv1a64(bytes: Array("foobar".utf8)) == 0x8594_4171_f739_67e8)
        // Floats hash as their little-endian bytes: 1.0 is 00 00 80 3f.
        #expect(Self.fnv1a64([Float(1), -0.0]) == Self.fnv1a64(bytes: [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x80]))
    }

    @Test func everyTypeHasGoldens() {
        let cases = Self.cases()
        #expect(Set(cases.map(\.type)) == Set(GGMLKQuant.allCases))
        #expect(cases.count == 3 * 5, "cases: \(cases)")
        #expect(Set(cases.map(\.deq)) == ["f32", "fnv1a64"])
        let tensors = Self.tensors()
        #expect(tensors.count == 15)
        #expect(Set(tensors.map(\.type)) == [.Q4_K, .Q6_K])
    }

    @Test func blockSizesMatchGGMLTypes() {
        for t in GGMLKQuant.allCases {
            #expect(t.ggmlType.blockSize == GGMLKQuant.blockElements, "\(t)")
            #expect(t.ggmlType.typeSize == t.blockBytes, "\(t)")
        }
    }

    @Test(arguments: cases())
    func dequantizeIsBitIdentical(_ c: Case) throws {
        let q = try Self.bytes("\(c.name).\(c.type.rawValue).bin")
        #expect(q.count == c.blocks * c.type.blockBytes)
        let got = Self.dequantize(c.type, q)
        if c.deq == "f32" {
            let want = try Self.bytes("\(c.name).\(c.type.rawValue).deq.f32")
            #expect(want.count == got.count * 4)
            let wantBits = want.withUnsafeBytes { raw in
                (0..<(raw.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self) }
            }
            let bad = got.indices.filter { $0 < wantBits.count && got[$0].bitPattern != wantBits[$0] }
            let differing = bad.count
            #expect(differing == 0, "\(c): values differ, first at \(bad.first.map { "element \($0) (block \($0 / 256)): ftq \(String(got[$0].bitPattern, radix: 16)), gguf-py \(String(wantBits[$0], radix: 16))" } ?? "")")
        } else {
            #expect(c.deq == "fnv1a64")
            let want = try Self.bytes("\(c.name).\(c.type.rawValue).deq.fnv1a64")
            #expect(want.count == c.blocks * 8)
            var bad: [Int] = []
            for b in 0..<min(c.blocks, want.count / 8) {
                let w = want.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: b * 8, as: UInt64.self) }
                if Self.fnv1a64(got[(b * 256)..<(b * 256 + 256)]) != UInt64(littleEndian: w) { bad.append(b) }
            }
            let differing = bad.count
            #expect(differing == 0, "\(c): blocks differ, the first: \(Array(bad.prefix(10)))")
        }
        #expect(got.allSatisfy { $0.isFinite })
    }

    /// The dispatcher that conversion uses serves the same kernels, and a buffer of several
    /// blocks dequantizes the same whole as block by block.
    @Test(arguments: GGMLKQuant.allCases)
    func dispatcherServesTheReference(_ t: GGMLKQuant) throws {
        let q = try Self.bytes("random.\(t.rawValue).bin")
        let kernel = try #require(GGMLDequantizer.kernel(for: t.ggmlType))
        var viaKernel = [Float](repeating: .nan, count: q.count / t.blockBytes * 256)
        q.withUnsafeBytes { src in viaKernel.withUnsafeMutableBufferPointer { kernel(src, $0) } }
        let whole = Self.dequantize(t, q)
        var blockwise: [Float] = []
        for b in 0..<(q.count / t.blockBytes) {
            blockwise += Self.dequantize(t, Array(q[(b * t.blockBytes)..<((b + 1) * t.blockBytes)]))
        }
        #expect(viaKernel.map(\.bitPattern) == whole.map(\.bitPattern))
        #expect(blockwise.map(\.bitPattern) == whole.map(\.bitPattern))
    }

    /// Real llama.cpp output: every Q4_K and Q6_K tensor of testdata/llamacpp/*.gguf, read at
    /// the offset gguf-py's reader gives, dequantizes to gguf-py's (and ggml's) bits.
    @Test(arguments: tensors())
    func llamaCppTensorsDequantizeBitIdentically(_ t: Tensor) throws {
        let path = Self.root.appendingPathComponent("testdata/llamacpp/\(t.file)")
        let file = try Data(contentsOf: path)
        let fixture = (Self.json("llamacpp.json")?["fixtures"] as? [[String: Any]])?.first { $0["file"] as? String == t.file }
        #expect(file.count == fixture?["size"] as? Int, "\(t.file) is not the fixture the goldens were made from")
        try #require(t.offset >= 0 && t.offset + t.nbytes <= file.count)
        #expect(t.nbytes == t.elements / 256 * t.type.blockBytes && t.elements % 256 == 0)
        let got = Self.dequantize(t.type, [UInt8](file[t.offset..<(t.offset + t.nbytes)]))
        #expect(got.count == t.elements)
        #expect(t.samples.count >= 16)
        let wrong = t.samples.filter { $0.0 >= got.count || got[$0.0].bitPattern != $0.1 }
        let wrongSamples = wrong.count
        #expect(wrongSamples == 0, "\(t): sampled values differ, first at \(wrong.first.map { "element \($0.0): ftq \($0.0 < got.count ? String(got[$0.0].bitPattern, radix: 16) : "none"), gguf-py \(String($0.1, radix: 16))" } ?? "")")
        #expect(Self.fnv1a64(got) == t.fnv, "\(t): FNV-1a 64 \(String(Self.fnv1a64(got), radix: 16)), gguf-py \(String(t.fnv, radix: 16))")
    }
}
