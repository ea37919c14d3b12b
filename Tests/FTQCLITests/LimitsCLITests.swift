import Foundation
import Testing

/// The limits and refusals of formats/limits.md and formats/cli.md that the corpus does not
/// reach with a small committed file.
@Suite struct LimitsCLITests {
    static let sparseSize = 1 << 36  // 64 GiB, sparse: only the header occupies disk

    @Test func oversizedArrayValueIsRefusedByItsClaim() throws {
        let tmp = try TestSupport.tempDir("ftq-limits")
        defer { TestSupport.cleanup(tmp) }
        var g = GGUFBytes()
        g.u32(3); g.u64(0); g.u64(1)
        g.string("big"); g.u32(9); g.u32(10); g.u64(1 << 26)  // 2^26 u64s = 512 MiB > 256 MiB
        let p = tmp + "/a.gguf"
        try LimitedRun.sparseFile(p, head: g.b, size: Self.sparseSize)
        let o = try LimitedRun.ftq(["inspect", p])
        LimitedRun.expectRejected(o, named: p, mentions: ["\"big\"", "limit"])
        #expect(o.stderrText.contains("[gguf.value-too-large]"))
    }

    @Test func oversizedStringValueIsRefusedByItsClaim() throws {
        let tmp = try TestSupport.tempDir("ftq-limits")
        defer { TestSupport.cleanup(tmp) }
        var g = GGUFBytes()
        g.u32(3); g.u64(0); g.u64(1)
        g.string("general.name"); g.u32(8); g.u64(1 << 30)  // a 1 GiB string
        let p = tmp + "/s.gguf"
        try LimitedRun.sparseFile(p, head: g.b, size: Self.sparseSize)
        let o = try LimitedRun.ftq(["inspect", p])
        LimitedRun.expectRejected(o, named: p, mentions: ["general.name", "limit"])
        #expect(o.stderrText.contains("[gguf.bad-string]"))
    }

    @Test func reversedLegacyMagicIsNamed() throws {
        let tmp = try TestSupport.tempDir("ftq-limits")
        defer { TestSupport.cleanup(tmp) }
        FileManager.default.createFile(atPath: tmp + "/old.bin", contents: Data(Array("algg".utf8) + [UInt8](repeating: 0, count: 32)))
        let r = try TestSupport.ftq(["inspect", tmp + "/old.bin"])
        #expect(r.status == 3)
        #expect(r.stderr.contains("[gguf.legacy-format]"))
    }

    @Test(arguments: [
        (#"{"metadata": [], "weight_map": {"a": "model-00001-of-00001.safetensors"}}"#, "index.bad-metadata"),
        (#"{"metadata": {}, "weight_map": {}}"#, "index.bad-weight-map"),
    ])
    func indexShapeIsChecked(_ index: String, _ code: String) throws {
        let tmp = try TestSupport.tempDir("ftq-limits")
        defer { TestSupport.cleanup(tmp) }
        FileManager.default.createFile(atPath: tmp + "/model.safetensors.index.json", contents: Data(index.utf8))
        let r = try TestSupport.ftq(["inspect", tmp])
        #expect(r.status == 3)
        #expect(r.stderr.contains("[\(code)]"), "\(r.stderr)")
    }

    @Test func failedWritesToStandardOutputAreIOErrors() throws {
        guard FileManager.default.fileExists(atPath: "/dev/full") else {
            Issue.record("/dev/full is missing on this machine")
            return
        }
        let tmp = try TestSupport.tempDir("ftq-limits")
        defer { TestSupport.cleanup(tmp) }
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        let file: [UInt8] = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian, Array.init) + Array(header.utf8) + [0, 0, 0, 0]
        FileManager.default.createFile(atPath: tmp + "/m.safetensors", contents: Data(file))
        for args in [["inspect", tmp + "/m.safetensors"], ["inspect", tmp + "/m.safetensors", "--json"]] {
            let r = try TestSupport.run("/bin/sh", ["-c", "exec \"$0\" \"$@\" > /dev/full", TestSupport.ftqBinary] + args)
            #expect(r.status == 4, "\(args): \(r.stderr)")
            #expect(r.stderr.contains("standard output") && r.stderr.contains("[io.write]"))
        }
    }

    @Test func negativeArrayItemLimitIsAUsageError() throws {
        let r = try TestSupport.ftq(["inspect", "/dev/null", "--max-array-items", "-1"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--max-array-items"))
    }

    @Test func inspectEscapesDisguisingCharacters() throws {
        let tmp = try TestSupport.tempDir("ftq-limits")
        defer { TestSupport.cleanup(tmp) }
        // A tensor name with an ESC sequence, a right-to-left override and a backslash.
        let name = "w\\u001b[31m\\u202egnp.exe\\\\x"
        let header = #"{"\#(name)":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#
        let file: [UInt8] = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian, Array.init) + Array(header.utf8) + [0]
        FileManager.default.createFile(atPath: tmp + "/m.safetensors", contents: Data(file))
        let r = try TestSupport.ftq(["inspect", tmp + "/m.safetensors"])
        #expect(r.status == 0)
        #expect(!r.stdout.unicodeScalars.contains { $0.value == 0x1b || $0.value == 0x202e })
        #expect(r.stdout.contains(#"w\u{1b}[31m\u{202e}gnp.exe\\x"#), "\(r.stdout)")
        // JSON output keeps the exact name.
        let j = try TestSupport.ftq(["inspect", tmp + "/m.safetensors", "--json"])
        let doc = try JSONSerialization.jsonObject(with: j.stdoutData) as? [String: Any]
        let got = ((doc?["tensors"] as? [[String: Any]])?.first?["name"] as? String)
        #expect(got == "w\u{1b}[31m\u{202e}gnp.exe\\x")
    }
}
