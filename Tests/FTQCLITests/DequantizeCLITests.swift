import Foundation
import Testing

/// `ftq dequantize` (and `convert` to safetensors) against gguf-py's dequantization of every
/// legacy block type, to safetensors and to GGUF, for each output dtype.
@Suite struct DequantizeCLITests {
    static let peer = TestSupport.tool("interop/dequant_peer.py")

    @Test(arguments: [("o.safetensors", "f32"), ("o.safetensors", "f16"), ("o.safetensors", "bf16"), ("o.gguf", "f32"), ("o.gguf", "bf16")])
    func matchesGGUFPy(_ output: String, _ dtype: String) throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        var r = try TestSupport.python(Self.peer, ["write", dir + "/q.gguf"])
        try #require(r.status == 0, "\(r.stdout)\(r.stderr)")
        r = try TestSupport.ftq(["dequantize", dir + "/q.gguf", "-o", dir + "/" + output, "--dtype", dtype])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.python(Self.peer, ["check", dir + "/q.gguf", dir + "/" + output, dtype])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        // The output carries its manifest, and verifies.
        #expect(try TestSupport.ftq(["verify", dir + "/" + output]).status == 0)
    }

    @Test func convertToSafetensorsDequantizesAndGGUFKeepsBlocks() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        try #require(try TestSupport.python(Self.peer, ["write", dir + "/q.gguf"]).status == 0)
        // To safetensors, quantized tensors must be decoded: F32 by default.
        var r = try TestSupport.ftq(["convert", dir + "/q.gguf", "-o", dir + "/c.safetensors"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.python(Self.peer, ["check", dir + "/q.gguf", dir + "/c.safetensors", "f32"])
        #expect(r.status == 0, "\(r.stdout)")
        // GGUF to GGUF keeps the blocks unless asked to dequantize.
        r = try TestSupport.ftq(["convert", dir + "/q.gguf", "-o", dir + "/same.gguf"])
        #expect(r.status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/q.gguf")) == Data(contentsOf: URL(fileURLWithPath: dir + "/same.gguf")))
        // general.file_type follows the dequantized contents.
        r = try TestSupport.ftq(["inspect", dir + "/same.gguf", "--json"])
        let before = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        #expect(((before["metadata"] as! [String: Any])["general.file_type"] as? Int) == 7)
        r = try TestSupport.ftq(["dequantize", dir + "/q.gguf", "-o", dir + "/d.gguf"])
        r = try TestSupport.ftq(["inspect", dir + "/d.gguf", "--json"])
        let after = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        #expect(((after["metadata"] as! [String: Any])["general.file_type"] as? Int) == 0)
    }
}
