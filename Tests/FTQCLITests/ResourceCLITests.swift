import Foundation
import Testing

/// Memory stays bounded whatever the tensor size, and an interrupted convert leaves nothing
/// at the final name.
@Suite(.serialized) struct ResourceCLITests {
    /// Writes a safetensors file holding one F32 tensor of `mib` MiB (a repeated pattern).
    static func bigFile(_ path: String, mib: Int) throws {
        let count = mib << 18
        let header = #"{"big":{"dtype":"F32","shape":[\#(count / 256),256],"data_offsets":[0,\#(count * 4)]}}"#
        var h = Array(header.utf8)
        h += [UInt8](repeating: 0x20, count: (8 - h.count % 8) % 8)
        FileManager.default.createFile(atPath: path, contents: nil)
        let fh = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? fh.close() }
        try fh.write(contentsOf: withUnsafeBytes(of: UInt64(h.count).littleEndian, Array.init) + h)
        let piece = Data(repeating: 0x3f, count: 1 << 20)
        for _ in 0..<(mib) { try fh.write(contentsOf: piece) }
    }

    @Test func peakMemoryIsBoundedByAChunkNotTheTensor() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        try Self.bigFile(dir + "/big.safetensors", mib: 384)
        // /usr/bin/time -f %M prints the peak resident set size in KiB.
        let r = try TestSupport.run("/usr/bin/time", ["-f", "%M", TestSupport.ftqBinary, "convert",
                                                      dir + "/big.safetensors", "-o", dir + "/big.gguf", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let kib = Int(r.stderr.split(separator: "\n").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "") ?? -1
        #expect(kib > 0)
        // A 384 MiB tensor is streamed through an 8 MiB chunk: peak RSS stays far below it.
        #expect(kib < 128 * 1024, "peak RSS \(kib) KiB")
        let size = try FileManager.default.attributesOfItem(atPath: dir + "/big.gguf")[.size] as? Int
        #expect(size.map { $0 > 384 << 20 } == true)
    }

    @Test func sigtermLeavesNoPartialOutput() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        try Self.bigFile(dir + "/big.safetensors", mib: 768)
        let outDir = dir + "/out"
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestSupport.ftqBinary)
        // F32 -> BF16 is slower than a copy, which leaves time to interrupt it.
        p.arguments = ["convert", dir + "/big.safetensors", "-o", outDir + "/m.safetensors", "--dtype", "bf16", "--quiet"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        // Wait until the temporary file exists, then interrupt.
        var sawTemp = false
        for _ in 0..<400 {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: outDir)) ?? []
            if names.contains(where: { $0.hasSuffix(".ftq-tmp") }) { sawTemp = true; break }
            usleep(10_000)
        }
        p.terminate()  // SIGTERM
        p.waitUntilExit()
        #expect(sawTemp)
        if p.terminationStatus == 0 {
            // The machine was fast enough to finish first: then the output must be complete.
            let size = try FileManager.default.attributesOfItem(atPath: outDir + "/m.safetensors")[.size] as? Int
            #expect(size.map { $0 > 384 << 20 } == true)
        } else {
            #expect(p.terminationStatus == 128 + 15)
            #expect(try FileManager.default.contentsOfDirectory(atPath: outDir) == [])
        }
    }

    /// A header's metadata is held as its encoded bytes and streamed to JSON: a 4 MiB `u8`
    /// array costs about 4 MiB, not one boxed value per element.
    @Test func largeMetadataArraysStayCompact() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        // GGUF v3 with one key-value: "big" = array[u8] of 4 MiB.
        var b: [UInt8] = Array("GGUF".utf8)
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
        u32(3); u64(0); u64(1)
        u64(3); b += Array("big".utf8); u32(9); u32(0); u64(4 << 20)
        b += [UInt8](repeating: 7, count: 4 << 20)
        FileManager.default.createFile(atPath: dir + "/a.gguf", contents: Data(b))
        for args in [["inspect", dir + "/a.gguf"], ["inspect", dir + "/a.gguf", "--json"]] {
            let r = try TestSupport.run("/usr/bin/time", ["-f", "%M", TestSupport.ftqBinary] + args)
            #expect(r.status == 0, "\(r.stderr)")
            let kib = Int(r.stderr.split(separator: "\n").last.map(String.init) ?? "") ?? -1
            #expect(kib > 0 && kib < 96 * 1024, "\(args): peak RSS \(kib) KiB")
            if args.contains("--json") {
                let doc = try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any]
                let arr = (doc?["metadata"] as? [String: Any])?["big"] as? [Int]
                #expect(arr?.count == 4 << 20 && arr?.first == 7)
            }
        }
    }
}
