import Foundation
import FTQCore

/// Shared helpers for format tests.
enum FormatTestSupport {
    static let repoRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func testdata(_ rel: String) -> String { repoRoot.appendingPathComponent("testdata/" + rel).path }

    /// Writes bytes to a fresh temporary file and returns its path.
    static func tempFile(_ bytes: [UInt8], name: String = "t.bin") throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ftq-fmt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let p = dir.appendingPathComponent(name).path
        FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }

    /// The error code thrown by `body`, or nil if it did not throw an FTQError.
    static func errorCode(_ body: () throws -> Void) -> String? {
        do { try body(); return nil } catch { return (error as? FTQError)?.code ?? "non-ftq-error: \(error)" }
    }
}
