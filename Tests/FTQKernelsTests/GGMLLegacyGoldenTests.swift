import Foundation
import Testing
@testable import FTQCore
@testable import FTQKernels

/// ftq's Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 against golden files made by gguf-py's quantizers
/// (byte-identical to ggml's reference; tools/golden/make_ggml_legacy.py,
/// testdata/golden/ggml-legacy/README.md).
@Suite struct GGMLLegacyGoldenTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("testdata/golden/ggml-legacy")

    struct Case: Sendable, CustomStringConvertible {
        var name: String
        var elements: Int
        var type: GGMLLegacyQuant
        var description: String { "\(name) \(type.rawValue)" }
    }

    static func cases() -> [Case] {
        guard let data = try? Data(contentsOf: dir.appendingPathComponent("cases.json")),
              let doc = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let list = doc["cases"] as? [[String: Any]] else { return [] }
        return list.flatMap { c in
            (c["types"] as? [String] ?? []).compactMap { t in
                GGMLLegacyQuant(rawValue: t).map { Case(name: c["name"] as! String, elements: c["elements"] as! Int, type: $0) }
            }
        }
    }

    static func floats(_ file: String) throws -> [Float] {
        let d = try Data(contentsOf: dir.appendingPathComponent(file))
        return d.withUnsafeBytes { raw in (0..<(d.count / 4)).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) } }
    }

    @Test func everyTypeHasGoldens() {
        let types = Set(Self.cases().map(\.type))
        #expect(types == Set(GGMLLegacyQuant.allCases), "golden types: \(types)")
        #expect(Self.cases().count >= 5 * 8)
    }

    @Test(arguments: cases())
    func quantizeIsByteIdentical(_ c: Case) throws {
        let x = try Self.floats("\(c.name).f32")
        #expect(x.count == c.elements)
        let want = [UInt8](try Data(contentsOf: Self.dir.appendingPathComponent("\(c.name).\(c.type.rawValue).bin")))
        var got = [UInt8](repeating: 0xAA, count: x.count / 32 * c.type.blockBytes)
        x.withUnsafeBufferPointer { src in got.withUnsafeMutableBytes { c.type.quantize(src, into: $0) } }
        #expect(got.count == want.count)
        if let k = got.indices.first(where: { $0 < want.count && got[$0] != want[$0] }) {
            let block = k / c.type.blockBytes
            Issue.record("\(c): first difference at byte \(k) (block \(block), byte \(k % c.type.blockBytes)): ftq \(got[k]), gguf-py \(want[k])")
        }
    }

    @Test(arguments: cases())
    func dequantizeIsBitIdentical(_ c: Case) throws {
        let q = [UInt8](try Data(contentsOf: Self.dir.appendingPathComponent("\(c.name).\(c.type.rawValue).bin")))
        let want = try Self.floats("\(c.name).\(c.type.rawValue).deq.f32")
        var got = [Float](repeating: .nan, count: q.count / c.type.blockBytes * 32)
        q.withUnsafeBytes { src in got.withUnsafeMutableBufferPointer { c.type.dequantize(src, into: $0) } }
        let bad = zip(got, want).enumerated().filter { $0.element.0.bitPattern != $0.element.1.bitPattern }
        #expect(bad.isEmpty, "\(c): \(bad.count) values differ, first at \(bad.first.map { "\($0.offset): \($0.element.0) vs \($0.element.1)" } ?? "")")
    }
}

/// Signed zeros: ftq follows ggml's reference loops (the running maximum starts at +0.0 and
/// keeps the first of equal magnitudes; min/max keep the first of equal values), where gguf-py
/// takes numpy's argmax/min/max and may differ in the sign of a zero scale
/// (testdata/golden/ggml-legacy/README.md lists these blocks; ggml itself was checked).
@Suite struct GGMLSignedZeroTests {
    func quantize(_ t: GGMLLegacyQuant, _ x: [Float]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: t.blockBytes)
        x.withUnsafeBufferPointer { src in out.withUnsafeMutableBytes { t.quantize(src, into: $0) } }
        return out
    }

    @Test func zeroBlocksTakeGGMLsSigns() {
        let negFirst: [Float] = [-0.0] + [Float](repeating: 0, count: 31)
        let allNeg = [Float](repeating: -0.0, count: 32)
        let alternating: [Float] = (0..<32).map { $0 % 2 == 0 ? 0.0 : -0.0 }
        for t in [GGMLLegacyQuant.Q4_0, .Q5_0] {
            #expect(Array(quantize(t, negFirst).prefix(2)) == [0x00, 0x80])  // d = 0 / -8 = -0
            #expect(Array(quantize(t, allNeg).prefix(2)) == [0x00, 0x80])
        }
        for t in [GGMLLegacyQuant.Q4_1, .Q5_1] {
            #expect(Array(quantize(t, negFirst).prefix(4)) == [0x00, 0x00, 0x00, 0x80])  // m = -0
            #expect(Array(quantize(t, alternating).prefix(4)) == [0x00, 0x00, 0x00, 0x00])  // m = +0
        }
    }
}
