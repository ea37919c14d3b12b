import Foundation
import Testing
import FTQCore
import FTQFormats

/// The caps are defined once (`Limits`), used by the readers under their own names, stated in
/// formats/limits.md, and large enough for the largest real files.
@Suite struct LimitsTests {
    static func doc(_ name: String) throws -> String {
        try String(contentsOfFile: FormatTestSupport.repoRoot.appendingPathComponent("formats/" + name).path, encoding: .utf8)
    }

    /// 268435456 -> "268,435,456".
    static func grouped(_ v: Int) -> String {
        var s = String(v), out = ""
        while s.count > 3 { out = "," + s.suffix(3) + out; s.removeLast(3) }
        return s + out
    }

    @Test func everyCapIsStatedInLimitsMd() throws {
        let g = Self.grouped
        let limits = try Self.doc("limits.md")
        let rows: [(String, String)] = [
            ("safetensors header", "| safetensors header length `N` | at most \(g(Limits.safetensorsHeaderBytes)) bytes"),
            ("index", "| index file size | at most \(g(Limits.safetensorsHeaderBytes)) bytes"),
            ("JSON depth", "| JSON nesting | at most \(Limits.jsonDepth) levels"),
            ("GGUF array depth", "| GGUF array nesting | \(Limits.ggufArrayDepth) levels |"),
            ("GGUF alignment", "1 to \(g(Limits.ggufMaxAlignment)) (1 MiB)"),
            ("GGUF dims", "| GGUF `n_dims` | at most \(Limits.ggufMaxDims) |"),
            ("GGUF key", "| GGUF key and tensor name length | at most \(g(Limits.ggufKeyBytes)) bytes |"),
            ("GGUF value", "| at most 256 MiB (\(g(Limits.ggufValueBytes)) bytes) |"),
            ("GGUF written name", "| GGUF tensor name length | at most \(Limits.ggufWrittenNameBytes) bytes of UTF-8 |"),
            ("companions", "| at most \(g(Limits.companionBytes)) bytes (64 MiB) each |"),
            ("adapter config", "| PEFT `adapter_config.json` | at most \(g(Limits.adapterConfigBytes)) bytes (1 MiB) |"),
            ("LoRA rank", "| 1 to \(g(Limits.loraRank)) |"),
            ("manifest", "| at most \(g(Limits.manifestBytes)) bytes (1 GiB) |"),
            ("plan config", "| `ftq plan` config.json | at most \(g(Limits.planConfigBytes)) bytes (16 MiB) |"),
            ("plan parameters", "| at most \(g(Limits.planParameters)) (2^50) |"),
            ("plan layers", "| layers a config.json describes (decoder or encoder) | at most \(g(Limits.planLayers)) |"),
            ("plan KV", "| at most \(g(Limits.planKVBytesPerToken)) bytes |"),
        ]
        for (what, text) in rows {
            #expect(limits.contains(text), "formats/limits.md does not state the \(what) cap as \"\(text)\"")
        }
        let ftqz = try Self.doc("ftqz.md")
        #expect(Limits.packIndexBytes == 64 << 20 && ftqz.contains("| index length | at most 64 MiB |"))
        #expect(Limits.packFrameBytes == 16 << 20 && ftqz.contains("| frame size | 1 byte to 16 MiB |"))
        #expect(ftqz.contains("| name | 1-\(Limits.packNameBytes) bytes, one component |"))
    }

    @Test func readersUseTheCaps() {
        #expect(SafetensorsHeader.maxHeaderBytes == Limits.safetensorsHeaderBytes)
        #expect(StrictJSON.maxDepth == Limits.jsonDepth)
        #expect(GGUFReader.maxArrayDepth == Limits.ggufArrayDepth)
        #expect(GGUFReader.maxAlignment == Limits.ggufMaxAlignment)
        #expect(GGUFReader.maxDims == Limits.ggufMaxDims)
        #expect(GGUFReader.maxKeyBytes == Limits.ggufKeyBytes)
        #expect(GGUFReader.maxValueBytes == Limits.ggufValueBytes)
        #expect(GGUFLayout.maxNameBytes == Limits.ggufWrittenNameBytes)
        #expect(CompanionFiles.maxBytes == Limits.companionBytes)
        #expect(LoRAAdapter.rankLimit == Limits.loraRank)
    }

    /// A header the size of the largest real one (126 MB, 1.29 million tensors) is under the
    /// cap, with room to spare.
    @Test func theLargestRealHeaderFits() {
        #expect(Limits.safetensorsHeaderBytes >= 2 * 126_000_000)
    }

    /// A header exactly at the cap is read (the cap refuses only what is over it): `{}` and
    /// then spaces to 256 MiB.
    @Test func aHeaderAtTheCapIsRead() throws {
        let n = Limits.safetensorsHeaderBytes
        let path = try FormatTestSupport.tempFile(withUnsafeBytes(of: UInt64(n).littleEndian, Array.init) + Array("{}".utf8))
        defer { try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent) }
        // Fill the rest of the header with spaces (JSON whitespace after the object).
        let fh = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try fh.seekToEnd()
        let spaces = Data(repeating: 0x20, count: 1 << 20)
        var left = n - 2
        while left > 0 {
            let k = min(left, spaces.count)
            try fh.write(contentsOf: spaces.prefix(k))
            left -= k
        }
        try fh.close()
        let m = try SafetensorsFile.open(path)
        #expect(m.tensors.isEmpty)
    }
}
