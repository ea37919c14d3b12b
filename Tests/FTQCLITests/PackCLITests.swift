import FTQArtifacts
import FTQCore
import Foundation
import Testing

/// `ftq pack` and `ftq unpack` (formats/ftqz.md): lossless round trips of model files and
/// sharded directories, determinism across --threads, every corruption and truncation
/// refused without leaving an output behind, and byte planes beating plain zstd on BF16.
@Suite struct PackCLITests {
    // MARK: helpers

    /// A small Llama-shaped BF16 model (tools/make_tiny_model.py): DIR/tiny/model.safetensors
    /// and DIR/tiny/config.json.
    static func tinyModel(in dir: String, hidden: Int = 32, vocab: Int = 64) throws -> String {
        let r = try TestSupport.python(TestSupport.tool("make_tiny_model.py"),
                                       [dir + "/tiny", "--layers", "1", "--hidden", String(hidden), "--vocab", String(vocab)])
        #expect(r.status == 0, "\(r.stderr)")
        return dir + "/tiny/model.safetensors"
    }

    static func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    static func write(_ data: Data, _ path: String) throws { try data.write(to: URL(fileURLWithPath: path)) }

    static func files(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// The pack's index, parsed with Foundation (an independent reader of the JSON).
    static func index(_ pack: Data) throws -> [String: Any] {
        let t = pack.suffix(56)
        let off = t.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let len = t.dropFirst(8).prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        return try JSONSerialization.jsonObject(with: pack.subdata(in: off..<(off + len))) as! [String: Any]
    }

    /// A file's frames from the index: [size, compressed size, planes].
    static func frames(_ file: [String: Any]) -> [[Int]] {
        (file["frames"] as! [[Any]]).map { [$0[0] as! Int, $0[1] as! Int, $0[2] as! Int] }
    }

    /// Runs `sha256sum -c FILE` in `dir`.
    static func sha256sumCheck(_ file: String, in dir: String) throws -> TestSupport.Result {
        try TestSupport.run("/usr/bin/env", ["sha256sum", "--quiet", "-c", file], cwd: dir)
    }

    /// Unpacks a damaged pack and checks that it is refused with exit 1 or 3 and leaves
    /// neither the output directory nor a staging directory.
    static func expectRefused(_ pack: String, in dir: String, _ what: String) throws -> Int32 {
        let out = dir + "/refused-out"
        let r = try TestSupport.ftq(["unpack", pack, "-o", out, "--quiet"])
        #expect(r.status == 1 || r.status == 3, "\(what): exit \(r.status), \(r.stderr)")
        #expect(r.stderr.contains("ftq: error:") && r.stderr.contains("[ftqz."), "\(what): \(r.stderr)")
        #expect(!exists(out), "\(what): the output directory was left behind")
        #expect(!files(dir).contains { $0.hasSuffix(".ftq-tmp") }, "\(what): a staging directory was left behind")
        return r.status
    }

    // MARK: round trips

    @Test func roundTripOfAModelFileWithItsSidecars() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let src = try Self.tinyModel(in: dir)
        // A GGUF file written by convert, with its manifest and checksum sidecars, F32 so that
        // 4-byte planes are exercised too.
        var r = try TestSupport.ftq(["convert", src, "-o", dir + "/m.gguf", "--dtype", "f32", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.ftq(["pack", dir + "/m.gguf", "-o", dir + "/m.ftqz", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        let names = (j["files"] as! [[String: Any]]).map { $0["name"] as! String }
        #expect(names == ["m.gguf", "m.gguf.manifest.json", "m.gguf.sha256"])
        // The pack's own sidecars.
        #expect(Self.exists(dir + "/m.ftqz.manifest.json") && Self.exists(dir + "/m.ftqz.sha256"))
        #expect(try Self.sha256sumCheck("m.ftqz.sha256", in: dir).status == 0)
        // F32 tensor data is stored as 4 byte planes.
        let idx = try Self.index(try Self.bytes(dir + "/m.ftqz"))
        let gguf = (idx["files"] as! [[String: Any]]).first { $0["name"] as? String == "m.gguf" }!
        #expect(Self.frames(gguf).contains { $0[2] == 4 })

        r = try TestSupport.ftq(["unpack", dir + "/m.ftqz", "-o", dir + "/out"])
        #expect(r.status == 0, "\(r.stderr)")
        let total = try names.reduce(0) { $0 + (try Self.bytes(dir + "/" + $1)).count }
        #expect(r.stdout == "unpacked 3 files (\(total) bytes) into \(dir)/out\n")
        for name in names {
            #expect(try Self.bytes(dir + "/out/" + name) == Self.bytes(dir + "/" + name), "\(name)")
        }
        #expect(Self.files(dir + "/out") == ["SHA256SUMS", "ftq-manifest.json", "m.gguf", "m.gguf.manifest.json", "m.gguf.sha256"])
        #expect(!Self.files(dir).contains { $0.hasSuffix(".ftq-tmp") })
        // The manifest written by unpack lists every file and every tensor, and checks out.
        let m = try JSONSerialization.jsonObject(with: try Self.bytes(dir + "/out/ftq-manifest.json")) as! [String: Any]
        #expect(m["command"] as! [String] == ["ftq", "unpack", "../m.ftqz", "-o", "../out"])
        let outputs = m["outputs"] as! [[String: Any]]
        #expect(outputs.map { $0["path"] as! String } == names)
        let tensors = outputs[0]["tensors"] as! [[String: Any]]
        r = try TestSupport.ftq(["inspect", dir + "/m.gguf", "--json"])
        let inspected = (try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any])["tensors"] as! [[String: Any]]
        #expect(tensors.count == inspected.count && tensors.count > 5)
        #expect(Set(tensors.map { $0["name"] as! String }) == Set(inspected.map { $0["name"] as! String }))
        #expect(outputs[0]["other_sha256"] is String && outputs[1]["other_sha256"] is NSNull)
        #expect(try Self.sha256sumCheck("SHA256SUMS", in: dir + "/out").status == 0)
        r = try TestSupport.ftq(["verify", dir + "/out"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        // The tensor digests agree with `ftq hash --tensors` on the original.
        r = try TestSupport.ftq(["hash", "--tensors", dir + "/m.gguf"])
        #expect(r.status == 0)
        let hashed = Set(r.stdout.split(separator: "\n").map { String($0.prefix(64)) })
        #expect(Set(tensors.map { $0["sha256"] as! String }) == hashed)
    }

    @Test func roundTripOfAShardedDirectory() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let src = try Self.tinyModel(in: dir)
        var r = try TestSupport.ftq(["convert", src, "-o", dir + "/hf", "--max-shard-size", "10KB", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        let names = Self.files(dir + "/hf")
        #expect(names.filter { $0.hasSuffix(".safetensors") }.count > 2)
        #expect(names.contains("ftq-manifest.json") && names.contains("SHA256SUMS") && names.contains("model.safetensors.index.json"))
        r = try TestSupport.ftq(["pack", dir + "/hf", "-o", dir + "/hf.ftqz", "--level", "5"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("packed \(names.count) files"))
        r = try TestSupport.ftq(["unpack", dir + "/hf.ftqz", "-o", dir + "/back", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        // The pack carried the directory's manifest and checksums: kept as packed.
        #expect(j["manifest_written"] as? Bool == false)
        #expect(Self.files(dir + "/back") == names)
        for name in names {
            #expect(try Self.bytes(dir + "/back/" + name) == Self.bytes(dir + "/hf/" + name), "\(name)")
        }
        #expect(try Self.sha256sumCheck("SHA256SUMS", in: dir + "/back").status == 0)
        r = try TestSupport.ftq(["verify", dir + "/back"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        // The sharded directory still reads as one model.
        r = try TestSupport.ftq(["inspect", dir + "/back", "--json"])
        #expect(r.status == 0)
    }

    @Test func emptyAndOddFilesRoundTrip() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        try FileManager.default.createDirectory(atPath: dir + "/in", withIntermediateDirectories: true)
        try Self.write(Data(), dir + "/in/empty")
        try Self.write(Data([7]), dir + "/in/one")
        // Not a valid safetensors file despite its name: packed as plain bytes.
        try Self.write(Data("not a model".utf8), dir + "/in/broken.safetensors")
        // Over one frame (4 MiB) of incompressible bytes.
        var rng = SystemRandomNumberGenerator()
        try Self.write(Data((0..<(5 << 20)).map { _ in UInt8.random(in: 0...255, using: &rng) }), dir + "/in/random.bin")
        try Self.write(Data("{\"a\": 1}\n".utf8), dir + "/in/.hidden")
        var r = try TestSupport.ftq(["pack", dir + "/in", "-o", dir + "/p.ftqz"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.ftq(["unpack", dir + "/p.ftqz", "-o", dir + "/out", "--threads", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        for name in Self.files(dir + "/in") {
            #expect(try Self.bytes(dir + "/out/" + name) == Self.bytes(dir + "/in/" + name), "\(name)")
        }
        #expect(Self.files(dir + "/out") == (Self.files(dir + "/in") + ["SHA256SUMS", "ftq-manifest.json"]).sorted())
        #expect(try Self.sha256sumCheck("SHA256SUMS", in: dir + "/out").status == 0)
    }

    // MARK: determinism

    @Test func sameBytesForAnyThreadCount() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        // Several frames: a 9 MB BF16 file, so that two threads really share the work.
        try Self.bf16Model(dir + "/big.safetensors", elements: 4_500_000)
        _ = try Self.tinyModel(in: dir)
        try FileManager.default.copyItem(atPath: dir + "/big.safetensors", toPath: dir + "/tiny/big.safetensors")
        var r = try TestSupport.ftq(["pack", dir + "/tiny", "-o", dir + "/a.ftqz", "--threads", "1"])
        #expect(r.status == 0, "\(r.stderr)")
        let a = try Self.bytes(dir + "/a.ftqz"), am = try Self.bytes(dir + "/a.ftqz.manifest.json")
        let frames = (try Self.index(a)["files"] as! [[String: Any]]).reduce(0) { $0 + ($1["frames"] as! [Any]).count }
        #expect(frames >= 5)
        for threads in ["2", "3"] {
            r = try TestSupport.ftq(["pack", dir + "/tiny", "-o", dir + "/a.ftqz", "--threads", threads, "--force"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try Self.bytes(dir + "/a.ftqz") == a, "--threads \(threads)")
            #expect(try Self.bytes(dir + "/a.ftqz.manifest.json") == am)
        }
        // From another working directory, with relative paths: the same pack and manifest.
        r = try TestSupport.ftq(["pack", "tiny", "-o", "a.ftqz", "--force"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.bytes(dir + "/a.ftqz") == a)
        #expect(try Self.bytes(dir + "/a.ftqz.manifest.json") == am)
        // Unpacking with one or two threads gives the same files and manifest.
        for threads in ["1", "2"] {
            r = try TestSupport.ftq(["unpack", dir + "/a.ftqz", "-o", dir + "/out" + threads, "--threads", threads])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(try Self.bytes(dir + "/out\(threads)/big.safetensors") == Self.bytes(dir + "/big.safetensors"))
        }
        let m1 = String(decoding: try Self.bytes(dir + "/out1/ftq-manifest.json"), as: UTF8.self)
        let m2 = String(decoding: try Self.bytes(dir + "/out2/ftq-manifest.json"), as: UTF8.self)
        #expect(m1.replacingOccurrences(of: "../out1", with: "../out2") == m2)
    }

    // MARK: refusals

    @Test func refusesExistingOutputsWithoutForce() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let src = try Self.tinyModel(in: dir)
        try Self.write(Data("keep me".utf8), dir + "/p.ftqz")
        var r = try TestSupport.ftq(["pack", src, "-o", dir + "/p.ftqz"])
        #expect(r.status == 2 && r.stderr.contains("already exists") && r.stderr.contains("--force"))
        #expect(try Self.bytes(dir + "/p.ftqz") == Data("keep me".utf8))
        #expect(!Self.exists(dir + "/p.ftqz.manifest.json"))
        r = try TestSupport.ftq(["pack", src, "-o", dir + "/p.ftqz", "--force"])
        #expect(r.status == 0, "\(r.stderr)")
        // An existing sidecar is refused like the pack.
        r = try TestSupport.ftq(["pack", src, "-o", dir + "/q.ftqz"])
        #expect(r.status == 0)
        try FileManager.default.removeItem(atPath: dir + "/q.ftqz")
        r = try TestSupport.ftq(["pack", src, "-o", dir + "/q.ftqz"])
        #expect(r.status == 2 && r.stderr.contains("q.ftqz.manifest.json") && r.stderr.contains("[output.exists]"))
        #expect(!Self.exists(dir + "/q.ftqz"))

        // unpack: an existing non-empty directory is refused without --force and left alone.
        try FileManager.default.createDirectory(atPath: dir + "/out", withIntermediateDirectories: true)
        try Self.write(Data("mine".utf8), dir + "/out/notes.txt")
        r = try TestSupport.ftq(["unpack", dir + "/p.ftqz", "-o", dir + "/out"])
        #expect(r.status == 2 && r.stderr.contains("[output.exists]"))
        #expect(Self.files(dir + "/out") == ["notes.txt"])
        r = try TestSupport.ftq(["unpack", dir + "/p.ftqz", "-o", dir + "/out", "--force"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(Self.files(dir + "/out") == ["SHA256SUMS", "ftq-manifest.json", "model.safetensors", "notes.txt"])
        // An empty existing directory is used without --force; a file is refused.
        try FileManager.default.createDirectory(atPath: dir + "/empty", withIntermediateDirectories: true)
        r = try TestSupport.ftq(["unpack", dir + "/p.ftqz", "-o", dir + "/empty"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.ftq(["unpack", dir + "/p.ftqz", "-o", dir + "/p.ftqz.sha256", "--force"])
        #expect(r.status == 2 && r.stderr.contains("[output.exists]"))
    }

    @Test func refusesBadInputsAndOptions() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let src = try Self.tinyModel(in: dir)
        var r = try TestSupport.ftq(["pack", src, "-o", dir + "/p.ftqz", "--level", "0"])
        #expect(r.status == 2 && r.stderr.contains("[usage.level]"))
        r = try TestSupport.ftq(["pack", src, "-o", dir + "/p.ftqz", "--level", "23"])
        #expect(r.status == 2)
        r = try TestSupport.ftq(["pack", dir + "/missing", "-o", dir + "/p.ftqz"])
        #expect(r.status == 4 && r.stderr.contains("[io.not-found]"))
        // Two inputs with one name.
        try FileManager.default.createDirectory(atPath: dir + "/other", withIntermediateDirectories: true)
        try Self.write(Data("{}".utf8), dir + "/other/config.json")
        r = try TestSupport.ftq(["pack", dir + "/tiny", dir + "/other", "-o", dir + "/p.ftqz"])
        #expect(r.status == 2 && r.stderr.contains("[pack.duplicate-name]"))
        // The same file twice is packed once.
        r = try TestSupport.ftq(["pack", src, dir + "/tiny", "-o", dir + "/p.ftqz", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(((try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any])["files"] as! [Any]).count == 2)
        // Subdirectories are refused.
        try FileManager.default.createDirectory(atPath: dir + "/tiny/sub", withIntermediateDirectories: true)
        r = try TestSupport.ftq(["pack", dir + "/tiny", "-o", dir + "/s.ftqz"])
        #expect(r.status == 3 && r.stderr.contains("[pack.subdirectory]"))
        #expect(!Self.exists(dir + "/s.ftqz"))
        // The pack may not be one of its own inputs.
        r = try TestSupport.ftq(["pack", dir + "/other", "-o", dir + "/other/config.json", "--force"])
        #expect(r.status == 2 && r.stderr.contains("[output.is-input]"))
        // Something that is not a pack.
        r = try TestSupport.ftq(["unpack", src, "-o", dir + "/x"])
        #expect(r.status == 3 && r.stderr.contains("[ftqz.bad-magic]"))
        #expect(!Self.exists(dir + "/x"))
        r = try TestSupport.ftq(["unpack", dir + "/nothing.ftqz", "-o", dir + "/x"])
        #expect(r.status == 4)
    }

    // MARK: corruption and truncation

    @Test func truncatedPacksAreRefused() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        // Every cut point of a small pack, through the command line.
        try Self.write(Data("{\"model_type\": \"llama\"}\n".utf8), dir + "/config.json")
        var r = try TestSupport.ftq(["pack", dir + "/config.json", "-o", dir + "/small.ftqz"])
        #expect(r.status == 0, "\(r.stderr)")
        let small = try Self.bytes(dir + "/small.ftqz")
        #expect(small.count < 600)
        for cut in 0..<small.count {
            try Self.write(small.prefix(cut), dir + "/cut.ftqz")
            let status = try Self.expectRefused(dir + "/cut.ftqz", in: dir, "cut at \(cut) of \(small.count)")
            #expect(status == 3, "cut at \(cut)")
        }
        // A model pack: cut points around every structure (header, each frame, index, trailer).
        let src = try Self.tinyModel(in: dir)
        r = try TestSupport.ftq(["pack", src, "-o", dir + "/m.ftqz"])
        #expect(r.status == 0)
        let pack = try Self.bytes(dir + "/m.ftqz")
        var cuts: Set<Int> = [0, 1, 7, 8, 15, 16, 17, pack.count - 1, pack.count - 8, pack.count - 55, pack.count - 56, pack.count - 57]
        var pos = 16
        for f in try Self.index(pack)["files"] as! [[String: Any]] {
            for fr in Self.frames(f) {
                cuts.formUnion([pos + 1, pos + 4, pos + fr[1] / 2, pos + fr[1] - 1, pos + fr[1]])
                pos += fr[1]
            }
        }
        cuts.formUnion([pos + 1, (pos + pack.count - 56) / 2])
        for cut in cuts.sorted() {
            try Self.write(pack.prefix(cut), dir + "/cut.ftqz")
            let status = try Self.expectRefused(dir + "/cut.ftqz", in: dir, "cut at \(cut) of \(pack.count)")
            #expect(status == 3, "cut at \(cut)")
        }
        // Bytes appended after the trailer are refused too.
        try Self.write(pack + Data([0]), dir + "/long.ftqz")
        _ = try Self.expectRefused(dir + "/long.ftqz", in: dir, "one byte appended")
    }

    @Test func flippedBytesInEveryRegionAreRefusedByTheCommand() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let src = try Self.tinyModel(in: dir)
        var r = try TestSupport.ftq(["pack", src, "-o", dir + "/m.ftqz"])
        #expect(r.status == 0, "\(r.stderr)")
        let pack = try Self.bytes(dir + "/m.ftqz")
        let idx = try Self.index(pack)
        var spots: [(Int, String)] = (0..<16).map { ($0, "header") } + (pack.count - 56..<pack.count).map { ($0, "trailer") }
        var pos = 16
        for f in idx["files"] as! [[String: Any]] {
            for (k, fr) in Self.frames(f).enumerated() {
                let w = "frame \(k) of \(f["name"]!)"
                spots += (0..<min(12, fr[1])).map { (pos + $0, w + " header") }
                spots += [(pos + fr[1] / 3, w), (pos + fr[1] / 2, w), (pos + fr[1] - 5, w), (pos + fr[1] - 1, w + " checksum")]
                pos += fr[1]
            }
        }
        spots += stride(from: pos, to: pack.count - 56, by: max(1, (pack.count - 56 - pos) / 40)).map { ($0, "index") }
        var statuses: Set<Int32> = []
        for (at, what) in spots {
            var bad = pack
            bad[at] ^= 0x01
            try Self.write(bad, dir + "/bad.ftqz")
            statuses.insert(try Self.expectRefused(dir + "/bad.ftqz", in: dir, "\(what), byte \(at)"))
        }
        // Both kinds occur: malformed structure (3) and checksum mismatches (1).
        #expect(statuses == [1, 3])
        // A damaged frame names the file and the frame.
        var bad = pack
        bad[pos - 20] ^= 0x40
        try Self.write(bad, dir + "/bad.ftqz")
        r = try TestSupport.ftq(["unpack", dir + "/bad.ftqz", "-o", dir + "/o"])
        #expect(r.status == 1 && r.stderr.contains("model.safetensors") && r.stderr.contains("corrupted"), "\(r.stderr)")
    }

    /// Every single-byte change anywhere in a small model pack (three values per byte) is
    /// refused, checked in-process with the reader that `ftq unpack` uses.
    @Test func everyFlippedByteOfASmallPackIsDetected() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let src = try Self.tinyModel(in: dir, hidden: 8, vocab: 16)
        let r = try TestSupport.ftq(["pack", src, "-o", dir + "/m.ftqz"])
        #expect(r.status == 0, "\(r.stderr)")
        let pack = try Self.bytes(dir + "/m.ftqz")
        #expect(pack.count < 20_000)
        try PackReader(dir + "/m.ftqz").check(threads: 1)
        var undetected: [Int] = []
        var kinds: [String: Int] = [:]
        for at in 0..<pack.count {
            for mask: UInt8 in [0x01, 0x80, 0xFF] {
                var bad = pack
                bad[at] ^= mask
                try Self.write(bad, dir + "/bad.ftqz")
                do {
                    try PackReader(dir + "/bad.ftqz").check(threads: 1)
                    undetected.append(at)
                } catch let e as FTQError {
                    #expect(e.kind == .checkFailed || e.kind == .invalidInput, "byte \(at): \(e)")
                    kinds[e.code, default: 0] += 1
                }
            }
        }
        #expect(undetected.isEmpty, "undetected changes at bytes \(undetected)")
        // Frames and the index fail their digests; the header and trailer their structure.
        #expect(kinds["ftqz.checksum", default: 0] > 0 && kinds["ftqz.bad-trailer", default: 0] > 0 && kinds["ftqz.bad-magic", default: 0] > 0)
    }

    /// An index whose checksum matches but whose contents break the rules (a crafted pack):
    /// refused as malformed (exit 3), never followed outside the output directory.
    @Test func craftedIndexesAreRefused() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        _ = try Self.tinyModel(in: dir)
        let r = try TestSupport.ftq(["pack", dir + "/tiny", "-o", dir + "/m.ftqz"])
        #expect(r.status == 0, "\(r.stderr)")
        let pack = try Self.bytes(dir + "/m.ftqz")
        let t = pack.suffix(56)
        let off = t.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let text = String(decoding: pack.subdata(in: off..<(pack.count - 56)), as: UTF8.self)
        let frames = try Self.index(pack)["files"] as! [[String: Any]]
        let firstFrame = Self.frames(frames[0])[0]
        let firstFrameText = "[\(firstFrame[0]),\(firstFrame[1]),\(firstFrame[2]),"

        /// The pack with `text` as its index (and a trailer that matches it).
        func craft(_ index: String) -> Data {
            let bytes = Array(index.utf8)
            let h = SHA256Hasher()
            h.update(bytes)
            let hex = Array(h.finalizeHex().utf8)
            func v(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : c - 0x61 + 10 }
            let digest = stride(from: 0, to: 64, by: 2).map { v(hex[$0]) << 4 | v(hex[$0 + 1]) }
            func le(_ x: Int) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: x >> (8 * $0)) } }
            return pack.prefix(off) + Data(bytes) + Data(le(off) + le(bytes.count) + digest + Array("FTQZ-END".utf8))
        }
        let cases: [(String, String, String)] = [
            ("path traversal", text.replacingOccurrences(of: "\"name\":\"config.json\"", with: "\"name\":\"../escape\""), "ftqz.bad-name"),
            ("a slash in a name", text.replacingOccurrences(of: "\"name\":\"config.json\"", with: "\"name\":\"a/b\""), "ftqz.bad-name"),
            ("duplicate names", text.replacingOccurrences(of: "\"name\":\"config.json\"", with: "\"name\":\"model.safetensors\""), "ftqz.duplicate-name"),
            ("huge frame", text.replacingOccurrences(of: firstFrameText, with: "[9223372036854775807,\(firstFrame[1]),1,"), "ftqz.bad-frame"),
            ("frame size past 2^63", text.replacingOccurrences(of: firstFrameText, with: "[18446744073709551616,\(firstFrame[1]),1,"), "ftqz.index-schema"),
            ("negative size", text.replacingOccurrences(of: firstFrameText, with: "[-1,\(firstFrame[1]),1,"), "ftqz.index-schema"),
            ("three planes", text.replacingOccurrences(of: firstFrameText, with: "[\(firstFrame[0]),\(firstFrame[1]),3,"), "ftqz.bad-frame"),
            ("compressed size too large", text.replacingOccurrences(of: firstFrameText, with: "[\(firstFrame[0]),\(firstFrame[0] * 2 + 1000),1,"), "ftqz.bad-frame"),
            ("unknown member", text.replacingOccurrences(of: "{\"level\":", with: "{\"x\":1,\"level\":"), "ftqz.index-schema"),
            ("not JSON", "{", "ftqz.index-syntax"),
            ("deep nesting", String(repeating: "[", count: 100_000), "ftqz.index-syntax"),
            ("no files", "{\"level\":3,\"files\":[]}", "ftqz.bad-layout"),
        ]
        for (what, index, code) in cases {
            #expect(index != text, "\(what): the replacement did not apply")
            try Self.write(craft(index), dir + "/crafted.ftqz")
            let res = try TestSupport.ftq(["unpack", dir + "/crafted.ftqz", "-o", dir + "/out"])
            #expect(res.status == 3, "\(what): \(res.stderr)")
            #expect(res.stderr.contains("[\(code)]"), "\(what): \(res.stderr)")
            #expect(!Self.exists(dir + "/out") && !Self.exists(dir + "/escape"), "\(what)")
        }
        // Frames whose digests match but whose bytes are not what ftq writes (the digest in the
        // index recomputed): zstd's and ftq's frame checks refuse them (exit 1).
        let frameAt = 16 + firstFrame[1]
        let second = Self.frames(frames[1])[0]
        for (what, at, mask) in [("frame header descriptor", frameAt + 4, UInt8(0x10)), ("frame content", frameAt + second[1] / 2, UInt8(0x01)),
                                 ("frame checksum", frameAt + second[1] - 1, UInt8(0x01))] {
            var body = pack.prefix(off)
            body[at] ^= mask
            let old = SHA256Hasher(), new = SHA256Hasher()
            old.update(Array(pack.subdata(in: frameAt..<(frameAt + second[1]))))
            new.update(Array(body.subdata(in: frameAt..<(frameAt + second[1]))))
            let index = text.replacingOccurrences(of: old.finalizeHex(), with: new.finalizeHex())
            #expect(index != text)
            try Self.write(body + craft(index).suffix(from: off), dir + "/crafted.ftqz")
            let res = try TestSupport.ftq(["unpack", dir + "/crafted.ftqz", "-o", dir + "/out"])
            #expect(res.status == 1 && res.stderr.contains("[ftqz.frame]") && res.stderr.contains("model.safetensors"), "\(what): \(res.stderr)")
            #expect(!Self.exists(dir + "/out"))
        }
        // A trailer that places the index elsewhere, or claims a huge one.
        var bad = pack
        bad[pack.count - 56] ^= 0x01
        try Self.write(bad, dir + "/crafted.ftqz")
        var res = try TestSupport.ftq(["unpack", dir + "/crafted.ftqz", "-o", dir + "/out"])
        #expect(res.status == 3 && res.stderr.contains("[ftqz.bad-trailer]"), "\(res.stderr)")
        bad = pack
        bad[pack.count - 41] = 0x7f
        try Self.write(bad, dir + "/crafted.ftqz")
        res = try TestSupport.ftq(["unpack", dir + "/crafted.ftqz", "-o", dir + "/out"])
        #expect(res.status == 3 && res.stderr.contains("[ftqz.index-too-large]"), "\(res.stderr)")
    }

    // MARK: resources

    /// A safetensors file holding one BF16 tensor of `mib` MiB (a repeating ramp of values).
    static func bigFile(_ path: String, mib: Int) throws {
        let count = mib << 19
        var h = Array(#"{"w":{"dtype":"BF16","shape":[\#(count)],"data_offsets":[0,\#(count * 2)]}}"#.utf8)
        h += [UInt8](repeating: 0x20, count: (8 - h.count % 8) % 8)
        FileManager.default.createFile(atPath: path, contents: nil)
        let fh = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? fh.close() }
        try fh.write(contentsOf: withUnsafeBytes(of: UInt64(h.count).littleEndian, Array.init) + h)
        let piece = Data((0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 ^ $0 >> 9) })
        for _ in 0..<mib { try fh.write(contentsOf: piece) }
    }

    /// The peak resident size in KiB of `ftq ARGS`, from /usr/bin/time.
    static func peakKiB(_ args: [String]) throws -> Int {
        let r = try TestSupport.run("/usr/bin/time", ["-f", "%M", TestSupport.ftqBinary] + args)
        #expect(r.status == 0, "\(r.stderr)")
        return Int(r.stderr.split(separator: "\n").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? "") ?? -1
    }

    @Test func memoryIsBoundedByFramesNotFiles() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        try Self.bigFile(dir + "/big.safetensors", mib: 256)
        // A few 4 MiB frames per thread, whatever the file's size.
        let pack = try Self.peakKiB(["pack", dir + "/big.safetensors", "-o", dir + "/big.ftqz", "--threads", "2", "--quiet"])
        #expect(pack > 0 && pack < 128 * 1024, "pack: peak RSS \(pack) KiB")
        let unpack = try Self.peakKiB(["unpack", dir + "/big.ftqz", "-o", dir + "/out", "--threads", "2", "--quiet"])
        #expect(unpack > 0 && unpack < 128 * 1024, "unpack: peak RSS \(unpack) KiB")
        #expect(try Self.bytes(dir + "/out/big.safetensors") == Self.bytes(dir + "/big.safetensors"))
    }

    @Test func sigtermDuringUnpackLeavesNoDirectory() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        try Self.bigFile(dir + "/big.safetensors", mib: 768)
        var r = try TestSupport.ftq(["pack", dir + "/big.safetensors", "-o", dir + "/big.ftqz", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        try FileManager.default.removeItem(atPath: dir + "/big.safetensors")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: TestSupport.ftqBinary)
        p.arguments = ["unpack", dir + "/big.ftqz", "-o", dir + "/out", "--quiet", "--threads", "1"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        // Wait until the staging directory holds a file being written, then interrupt.
        var sawStage = false
        for _ in 0..<400 {
            let stages = Self.files(dir).filter { $0.hasSuffix(".ftq-tmp") }
            if let s = stages.first, !Self.files(dir + "/" + s).isEmpty { sawStage = true; break }
            usleep(5_000)
        }
        p.terminate()
        p.waitUntilExit()
        #expect(sawStage)
        if p.terminationStatus == 0 {
            // Finished before the signal: then everything is there.
            r = try TestSupport.ftq(["verify", dir + "/out"])
            #expect(r.status == 0)
        } else {
            #expect(p.terminationStatus == 128 + 15)
            #expect(!Self.exists(dir + "/out"))
            #expect(Self.files(dir) == ["big.ftqz", "big.ftqz.manifest.json", "big.ftqz.sha256"])
        }
    }

    // MARK: compression

    /// A safetensors file of `elements` BF16 weights drawn from N(0, 0.02) (numpy, rounded to
    /// BF16 by ml_dtypes), as one tensor.
    static func bf16Model(_ path: String, elements: Int) throws {
        let code = """
        import json, struct, sys, numpy as np, ml_dtypes
        n = int(sys.argv[2])
        x = (np.random.default_rng(7).standard_normal(n, dtype=np.float32) * 0.02).astype(ml_dtypes.bfloat16)
        h = json.dumps({"w": {"dtype": "BF16", "shape": [n], "data_offsets": [0, 2 * n]}}, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
        open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + x.tobytes())
        """
        let r = try TestSupport.run("/usr/bin/env", ["python3", "-c", code, path, String(elements)])
        #expect(r.status == 0, "\(r.stderr)")
    }

    /// Byte planes against plain zstd at the same level on realistic BF16 weights. The plain
    /// zstd baseline is the same bytes packed under a name that is not a model's (so stored
    /// without planes: zstd -3 in the same 4 MiB frames) and `zstd -3` itself on the whole file.
    @Test func bytePlanesBeatPlainZstdOnBF16() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        try Self.bf16Model(dir + "/w.safetensors", elements: 6_000_000)
        try FileManager.default.copyItem(atPath: dir + "/w.safetensors", toPath: dir + "/w.bin")
        let size = Double(try Self.bytes(dir + "/w.safetensors").count)
        var r = try TestSupport.ftq(["pack", dir + "/w.safetensors", "-o", dir + "/planes.ftqz"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.ftq(["pack", dir + "/w.bin", "-o", dir + "/plain.ftqz"])
        #expect(r.status == 0, "\(r.stderr)")
        let planes = size / Double(try Self.bytes(dir + "/planes.ftqz").count)
        let plain = size / Double(try Self.bytes(dir + "/plain.ftqz").count)
        #expect(planes >= 1.4, "byte planes: ratio \(planes)")
        #expect(plain < 1.3, "plain frames: ratio \(plain)")
        #expect(planes > plain + 0.1)
        // The zstd command comes with tools/setup.sh.
        r = try TestSupport.run("/usr/bin/env", ["zstd", "-3", "-q", dir + "/w.safetensors", "-o", dir + "/w.zst"])
        #expect(r.status == 0, "zstd: \(r.stderr)")
        let zstd = size / Double(try Self.bytes(dir + "/w.zst").count)
        #expect(zstd < 1.3 && planes > zstd + 0.1, "zstd -3: \(zstd), ftq pack: \(planes)")
        // And the planes come back exactly.
        r = try TestSupport.ftq(["unpack", dir + "/planes.ftqz", "-o", dir + "/out"])
        #expect(r.status == 0)
        #expect(try Self.bytes(dir + "/out/w.safetensors") == Self.bytes(dir + "/w.safetensors"))
    }
}

/// The pieces of the format on their own: byte planes and how files are cut into regions.
@Suite struct PackPartsTests {
    @Test func bytePlanesFollowTheDefinitionAndInvert() {
        var rng = SystemRandomNumberGenerator()
        for planes in [1, 2, 4] {
            for elements in [0, 1, 2, 3, 7, 64, 1000, 4099] {
                let n = elements * planes
                let data = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
                var split = [UInt8](repeating: 0, count: n), back = [UInt8](repeating: 0, count: n)
                data.withUnsafeBytes { src in
                    split.withUnsafeMutableBytes { BytePlanes.split(src.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, $0.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 1)!, count: n, planes: planes) }
                }
                // planes[k * m + i] == data[i * p + k]
                let expected = (0..<planes).flatMap { k in (0..<elements).map { i in data[i * planes + k] } }
                #expect(split == expected, "planes \(planes), \(elements) elements")
                split.withUnsafeBytes { src in
                    back.withUnsafeMutableBytes { BytePlanes.join(src.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, $0.baseAddress ?? UnsafeMutableRawPointer(bitPattern: 1)!, count: n, planes: planes) }
                }
                #expect(back == data)
            }
        }
    }

    @Test func regionsCoverTheFileOnce() {
        typealias R = PackWriter.Region
        // Two BF16 tensors with GGUF-style padding between them share a region; an F32 tensor
        // starts another; bytes around them are plain.
        var r = PackWriter.regions(fileSize: 10_000, floats: [(100, 1000, 2), (1120, 2000, 2), (3200, 4000, 4)])
        #expect(r == [R(offset: 0, length: 100, planes: 1), R(offset: 100, length: 3020, planes: 2),
                      R(offset: 3120, length: 80, planes: 1), R(offset: 3200, length: 4000, planes: 4),
                      R(offset: 7200, length: 2800, planes: 1)])
        // A gap that is not a whole number of elements, or too long, splits the region.
        r = PackWriter.regions(fileSize: 20_000, floats: [(0, 100, 2), (101, 100, 2), (5301, 100, 2)])
        #expect(r.map(\.planes) == [2, 1, 2, 1, 2, 1])
        #expect(r.map(\.length) == [100, 1, 100, 5100, 100, 14599])
        // Overlapping, out-of-file and ragged tensors are left as plain bytes.
        r = PackWriter.regions(fileSize: 1000, floats: [(0, 500, 2), (400, 200, 2), (900, 200, 2), (600, 3, 2), (Int.max - 1, 4, 4)])
        #expect(r == [R(offset: 0, length: 500, planes: 2), R(offset: 500, length: 500, planes: 1)])
        #expect(PackWriter.regions(fileSize: 0, floats: []).isEmpty)
    }
}
