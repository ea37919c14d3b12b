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
}
