import Foundation
import Testing
@testable import FTQKernels

/// DoRA's norm of a fan_in_fan_out weight's columns against torch.linalg.norm(w.T, dim=1) on the
/// CPU (testdata/golden/peft-more/norms-t, tools/golden/make_peft_more.py): bit for bit.
@Suite struct DoRAColumnTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../testdata/golden/peft-more/norms-t").standardized.path

    static func floats(_ name: String) throws -> [Float] {
        let d = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
        return d.withUnsafeBytes { raw in (0..<(d.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) } }
    }

    @Test(arguments: [7, 8, 32, 100])
    func columnNormIsTorchs(_ n: Int) throws {
        let w = try Self.floats("rows-\(n).f32"), norms = try Self.floats("norms-\(n).f32")
        #expect(w.count == n * 24 && norms.count == 24)
        let got = w.withUnsafeBufferPointer { DoRA.columnNorms($0, rows: n, cols: 24) }
        for c in 0..<24 { #expect(got[c].bitPattern == norms[c].bitPattern, "n \(n) column \(c): \(got[c]) vs \(norms[c])") }
    }

    /// scaleColumns: each column times magnitude / norm, both rounded to float32.
    @Test func scaleColumns() {
        var w: [Float] = [3, 1, 4, 1]  // [2, 2]: columns (3, 4) and (1, 1)
        let m: [Float] = [10, 2]
        w.withUnsafeMutableBufferPointer { wp in m.withUnsafeBufferPointer { DoRA.scale(wp, rows: 2, cols: 2, magnitude: $0, fanInFanOut: true) } }
        let f: Float = 2 / Float(2).squareRoot()
        #expect(w == [6, f, 8, f])
    }
}
