import Foundation
import Testing
@testable import FTQKernels

/// DoRA's row norm against torch.linalg.norm(rows, dim=1) on the CPU
/// (testdata/golden/peft-dora/norms, tools/golden/make_peft_dora.py): bit for bit.
@Suite struct DoRATests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../testdata/golden/peft-dora/norms").standardized.path

    static func floats(_ name: String) throws -> [Float] {
        let d = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
        return d.withUnsafeBytes { raw in (0..<(d.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) } }
    }

    @Test(arguments: [8, 48, 136, 1024])
    func rowNormIsTorchs(_ n: Int) throws {
        let rows = try Self.floats("rows-\(n).f32"), norms = try Self.floats("norms-\(n).f32")
        #expect(rows.count == 16 * n && norms.count == 16)
        for r in 0..<16 {
            let got = rows.withUnsafeBufferPointer { DoRA.rowNorm(UnsafeBufferPointer(rebasing: $0[(r * n)..<((r + 1) * n)])) }
            #expect(got.bitPattern == norms[r].bitPattern, "n \(n) row \(r): \(got) vs \(norms[r])")
        }
    }

    /// scaleRows: each row times magnitude / norm, both rounded to float32.
    @Test func scaleRows() {
        var w: [Float] = [3, 4, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]
        let m: [Float] = [10, 2]
        w.withUnsafeMutableBufferPointer { wp in m.withUnsafeBufferPointer { DoRA.scaleRows(wp, rows: 2, cols: 8, magnitude: $0) } }
        let f: Float = 2 / Float(8).squareRoot()
        #expect(Array(w[0..<8]) == [6, 8, 0, 0, 0, 0, 0, 0] && Array(w[8...]) == [Float](repeating: f, count: 8))
    }
}
