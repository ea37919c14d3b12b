import Foundation
import Testing

/// `ftq quantize --type` against gguf-py's quantizers (byte-identical to ggml's reference).
@Suite struct QuantizeCLITests {
    static let peer = TestSupport.tool("interop/quantize_peer.py")

    @Test(arguments: ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"])
    func safetensorsToGGUFMatchesGGUFPy(_ type: String) throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let src = try ConvertCLITests.tinyModel(in: dir)
        var r = try TestSupport.ftq(["quantize", src, "--type", type])
        #expect(r.status == 0, "\(r.stderr)")
        let out = dir + "/tiny/model-\(type).gguf"  // the default name
        r = try TestSupport.python(Self.peer, ["check", src, out, type])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(try TestSupport.ftq(["verify", out]).status == 0)
    }

    /// A llama.cpp file is requantized: its blocks decoded, then quantized, as gguf-py does;
    /// the key-values are kept with general.file_type set for the new type.
    @Test func requantizesALlamaCppFile() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let src = TestSupport.testdata("llamacpp/tiny-llama-Q4_K_M.gguf")
        var r = try TestSupport.ftq(["quantize", src, "--type", "Q8_0", "-o", dir + "/r.gguf"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.python(Self.peer, ["check", src, dir + "/r.gguf", "Q8_0"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        r = try TestSupport.ftq(["inspect", dir + "/r.gguf", "--json"])
        let doc = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        let meta = doc["metadata"] as! [String: Any]
        #expect(meta["general.file_type"] as? Int == 7)
        #expect(meta["general.architecture"] as? String == "llama")
    }

    @Test func rowsThatDoNotFillBlocksFallBackToF16() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        // w: F32 [2, 33] (rows of 33: not a multiple of 32), v: F32 [2, 32], n: F32 [3].
        let header = #"{"n":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"v":{"dtype":"F32","shape":[2,32],"data_offsets":[12,268]},"w":{"dtype":"F32","shape":[2,33],"data_offsets":[268,532]}}"#
        var bytes: [UInt8] = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian, Array.init) + Array(header.utf8)
        for k in 0..<(3 + 64 + 66) { bytes += withUnsafeBytes(of: Float(k % 17) * 0.125 - 1, Array.init) }
        FileManager.default.createFile(atPath: dir + "/m.safetensors", contents: Data(bytes))
        var r = try TestSupport.ftq(["quantize", dir + "/m.safetensors", "--type", "Q4_0", "-o", dir + "/m.gguf"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("ftq: note: tensor \"w\" [2, 33]") && r.stderr.contains("kept as F16"), "\(r.stderr)")
        r = try TestSupport.ftq(["inspect", dir + "/m.gguf", "--json"])
        let doc = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        let types = Dictionary(uniqueKeysWithValues: (doc["tensors"] as! [[String: Any]]).map { ($0["name"] as! String, $0["dtype"] as! String) })
        #expect(types == ["n": "F32", "v": "Q4_0", "w": "F16"])
    }

    @Test func usageErrors() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let src = try ConvertCLITests.tinyModel(in: dir)
        #expect(try TestSupport.ftq(["quantize", src, "--type", "Q3_X"]).status == 2)
        #expect(try TestSupport.ftq(["quantize", src, "--type", "Q8_0", "-o", dir + "/x.safetensors"]).status == 2)
        #expect(try TestSupport.ftq(["quantize", src]).status == 2)
    }

    /// Q4_K and Q6_K through the CLI: a weight from the ggml goldens comes out byte-identical to
    /// ggml's own blocks; rows that are not a multiple of 256 fall back as llama-quantize does
    /// (Q4_K -> Q5_0, Q6_K -> Q8_0), rows not a multiple of 32 to F16, 1-D tensors to F32.
    @Test(arguments: [("Q4_K", "Q5_0"), ("Q6_K", "Q8_0")])
    func kQuantsMatchGGMLAndFallBack(_ type: String, _ fallback: String) throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let golden = TestSupport.testdata("golden/ggml-kquants-quantize")
        let normal = [UInt8](try Data(contentsOf: URL(fileURLWithPath: golden + "/normal.f32")))  // 4 x 2048
        var odd: [UInt8] = [], tiny: [UInt8] = [], norm: [UInt8] = []
        for k in 0..<(3 * 96) { odd += withUnsafeBytes(of: (Float(k % 29) * 0.03 - 0.4).bitPattern.littleEndian, Array.init) }
        for k in 0..<(2 * 33) { tiny += withUnsafeBytes(of: (Float(k) * 0.01).bitPattern.littleEndian, Array.init) }
        for k in 0..<2048 { norm += withUnsafeBytes(of: (1 + Float(k) * 1e-4).bitPattern.littleEndian, Array.init) }
        BnBQuantizeCLITests.safetensors([("a.weight", "F32", [4, 2048], normal), ("b.weight", "F32", [3, 96], odd),
                                         ("c.weight", "F32", [2, 33], tiny), ("norm.weight", "F32", [2048], norm)],
                                        to: dir + "/m.safetensors")
        var r = try TestSupport.ftq(["quantize", dir + "/m.safetensors", "--type", type.lowercased()])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("tensor \"b.weight\" [3, 96]: rows of 96 are not a multiple of 256, \(fallback) instead of \(type)"), "\(r.stderr)")
        #expect(r.stderr.contains("tensor \"c.weight\" [2, 33]: rows of 33 are not a multiple of 32, kept as F16"), "\(r.stderr)")
        let out = dir + "/m-\(type).gguf"
        r = try TestSupport.ftq(["inspect", out, "--json"])
        let doc = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        let tensors = doc["tensors"] as! [[String: Any]]
        let types = Dictionary(uniqueKeysWithValues: tensors.map { ($0["name"] as! String, $0["dtype"] as! String) })
        #expect(types == ["a.weight": type, "b.weight": fallback, "c.weight": "F16", "norm.weight": "F32"])
        let a = try #require(tensors.first { $0["name"] as? String == "a.weight" })
        let file = try Data(contentsOf: URL(fileURLWithPath: out))
        let off = try #require(a["offset"] as? Int), n = try #require(a["nbytes"] as? Int)
        #expect(file.subdata(in: off..<(off + n)) == (try Data(contentsOf: URL(fileURLWithPath: golden + "/normal.\(type).bin"))))
        #expect(try TestSupport.ftq(["verify", out]).status == 0)
        // gguf-py reads the file; its decoding of every tensor equals ftq's.
        r = try TestSupport.ftq(["dequantize", out, "-o", dir + "/d.safetensors", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.python(TestSupport.tool("interop/dequant_peer.py"), ["check", out, dir + "/d.safetensors", "f32"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    }

    /// Large tensors are quantized on several threads, split at block boundaries: the bytes do
    /// not depend on --threads.
    @Test(arguments: ["Q8_0", "Q4_K", "Q6_K"])
    func threadsDoNotChangeTheBytes(_ type: String) throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let rows = 700, cols = 1024
        var bytes = [UInt8]()
        bytes.reserveCapacity(rows * cols * 4)
        var seed: UInt64 = 3
        for _ in 0..<(rows * cols) {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            bytes += withUnsafeBytes(of: (Float(Int64(bitPattern: seed) >> 40) * 1e-7).bitPattern.littleEndian, Array.init)
        }
        BnBQuantizeCLITests.safetensors([("w.weight", "F32", [rows, cols], bytes)], to: dir + "/m.safetensors")
        var outs: [Data] = []
        for t in ["1", "2", "3"] {
            let r = try TestSupport.ftq(["quantize", dir + "/m.safetensors", "--type", type, "--threads", t, "-o", dir + "/o\(t).gguf", "-q"])
            #expect(r.status == 0, "\(r.stderr)")
            outs.append(try Data(contentsOf: URL(fileURLWithPath: dir + "/o\(t).gguf")))
        }
        #expect(outs[0] == outs[1] && outs[1] == outs[2])
    }
}
