import Foundation
import Testing

/// `ftq convert` behaviour a user relies on: outputs appear complete or not at all, existing
/// outputs and inputs are never overwritten by accident, directories shard as asked.
@Suite struct ConvertCLITests {
    /// A small Llama-shaped BF16 model made by tools/make_tiny_model.py.
    static func tinyModel(in dir: String) throws -> String {
        let r = try TestSupport.python(TestSupport.tool("make_tiny_model.py"), [dir + "/tiny", "--layers", "1", "--hidden", "32", "--vocab", "64"])
        #expect(r.status == 0, "\(r.stderr)")
        return dir + "/tiny/model.safetensors"
    }

    static func files(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    @Test func roundTripThroughGGUFIsByteIdentical() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let src = try Self.tinyModel(in: dir)
        var r = try TestSupport.ftq(["convert", src, "-o", dir + "/m.gguf", "--quiet"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("wrote \(dir)/m.gguf"))
        r = try TestSupport.ftq(["convert", dir + "/m.gguf", "-o", dir + "/back.safetensors"])
        #expect(r.status == 0, "\(r.stderr)")
        // Same tensors, same dtype (BF16), same order rule; only __metadata__ is the same too.
        let a = try Data(contentsOf: URL(fileURLWithPath: src))
        let b = try Data(contentsOf: URL(fileURLWithPath: dir + "/back.safetensors"))
        #expect(a == b)
        // No temporary files remain.
        #expect(!Self.files(dir).contains { $0.hasSuffix(".ftq-tmp") })
    }

    @Test func refusesExistingOutputWithoutForce() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let src = try Self.tinyModel(in: dir)
        let out = dir + "/out.gguf"
        FileManager.default.createFile(atPath: out, contents: Data("keep me".utf8))
        var r = try TestSupport.ftq(["convert", src, "-o", out])
        #expect(r.status == 2)
        #expect(r.stderr.contains("already exists") && r.stderr.contains("--force"))
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "keep me")
        r = try TestSupport.ftq(["convert", src, "-o", out, "--force"])
        #expect(r.status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)).prefix(4) == Data("GGUF".utf8))
    }

    @Test func refusesOutputEqualToInput() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let src = try Self.tinyModel(in: dir)
        let before = try Data(contentsOf: URL(fileURLWithPath: src))
        for out in [src, dir + "/tiny/../tiny/model.safetensors"] {
            let r = try TestSupport.ftq(["convert", src, "-o", out, "--force"])
            #expect(r.status == 2)
            #expect(r.stderr.contains("is an input"))
        }
        // A directory output that holds the input is refused too.
        let r = try TestSupport.ftq(["convert", src, "-o", dir + "/tiny", "--force"])
        #expect(r.status == 2)
        #expect(try Data(contentsOf: URL(fileURLWithPath: src)) == before)
    }

    @Test func shardsAndReadsBackAsOneModel() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let src = try Self.tinyModel(in: dir)
        var r = try TestSupport.ftq(["convert", src, "-o", dir + "/sharded", "--max-shard-size", "10KB", "--dtype", "f32"])
        #expect(r.status == 0, "\(r.stderr)")
        let names = Self.files(dir + "/sharded")
        #expect(names.contains("model.safetensors.index.json"))
        let shards = names.filter { $0.hasSuffix(".safetensors") }
        #expect(shards.count > 2)
        #expect(shards.allSatisfy { $0.hasPrefix("model-0000") && $0.contains("-of-0000") })
        // Reading the directory gives every tensor, now F32.
        r = try TestSupport.ftq(["inspect", dir + "/sharded", "--json"])
        #expect(r.status == 0)
        let j = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        let tensors = j["tensors"] as! [[String: Any]]
        #expect(tensors.count == 12)
        #expect(tensors.allSatisfy { $0["dtype"] as? String == "F32" })
        // Converting the directory back to one BF16 file reproduces the original bytes.
        r = try TestSupport.ftq(["convert", dir + "/sharded", "-o", dir + "/again.safetensors", "--dtype", "bf16"])
        #expect(r.status == 0, "\(r.stderr)")
        // The source file's metadata was {"format":"pt"}; shards carry it too.
        #expect(try Data(contentsOf: URL(fileURLWithPath: src)) == Data(contentsOf: URL(fileURLWithPath: dir + "/again.safetensors")))
    }

    @Test func forceReplacesStaleShards() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let src = try Self.tinyModel(in: dir)
        let out = dir + "/hf"
        var r = try TestSupport.ftq(["convert", src, "-o", out, "--max-shard-size", "5KB"])
        #expect(r.status == 0, "\(r.stderr)")
        let manyShards = Self.files(out).count
        FileManager.default.createFile(atPath: out + "/config.json", contents: Data("{}".utf8))
        r = try TestSupport.ftq(["convert", src, "-o", out])
        #expect(r.status == 2)  // not empty: refused without --force
        r = try TestSupport.ftq(["convert", src, "-o", out, "--force"])
        #expect(r.status == 0, "\(r.stderr)")
        // One shard now: model.safetensors, no index, no stale shard; other files kept.
        #expect(Self.files(out) == ["SHA256SUMS", "config.json", "ftq-manifest.json", "model.safetensors"])
        #expect(manyShards > 3)
    }

    @Test func usageErrors() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let src = try Self.tinyModel(in: dir)
        let cases: [[String]] = [
            ["convert", src, "-o", dir + "/x.gguf", "--dtype", "int4"],
            ["convert", src, "-o", dir + "/x.gguf", "--max-shard-size", "1GB"],
            ["convert", src, "-o", dir + "/x", "--max-shard-size", "lots"],
            ["convert", src],
        ]
        for args in cases {
            let r = try TestSupport.ftq(args)
            #expect(r.status == 2, "\(args): \(r.stderr)")
            #expect(!r.stderr.isEmpty)
        }
        #expect(Self.files(dir) == ["tiny"])
    }

    @Test func integerAndBoolTensorsKeepTheirDtype() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        // I64 [2] and BOOL [1] beside an F32 [2]; --dtype bf16 changes only the F32.
        let header = #"{"f":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"i":{"dtype":"I64","shape":[2],"data_offsets":[8,24]},"b":{"dtype":"BOOL","shape":[1],"data_offsets":[24,25]}}"#
        var bytes: [UInt8] = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian, Array.init) + Array(header.utf8)
        bytes += [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40] + [7, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff] + [1]
        FileManager.default.createFile(atPath: dir + "/in.safetensors", contents: Data(bytes))
        let r = try TestSupport.ftq(["convert", dir + "/in.safetensors", "-o", dir + "/out.safetensors", "--dtype", "bf16"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try TestSupport.ftq(["inspect", dir + "/out.safetensors", "--json"])
        let obj = try JSONSerialization.jsonObject(with: j.stdoutData) as! [String: Any]
        let dtypes = Dictionary(uniqueKeysWithValues: (obj["tensors"] as! [[String: Any]]).map { ($0["name"] as! String, $0["dtype"] as! String) })
        #expect(dtypes == ["f": "BF16", "i": "I64", "b": "BOOL"])
        // BOOL cannot go to GGUF: a clear error, exit 3, and no output.
        let g = try TestSupport.ftq(["convert", dir + "/in.safetensors", "-o", dir + "/out.gguf"])
        #expect(g.status == 3)
        #expect(g.stderr.contains("\"b\"") && g.stderr.contains("BOOL"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.gguf"))
    }
}
