import Foundation
import Testing

/// `ftq convert HFDIR -o model.gguf` for Llama-family checkpoints (formats/llama-gguf.md),
/// checked with gguf-py and a numpy re-implementation of llama.cpp's convert_hf_to_gguf
/// (tools/interop/llama_gguf_peer.py). That llama.cpp runs the files and matches transformers'
/// logits is checked by tools/interop/llama_gguf_logits.py, which needs torch and
/// llama-cpp-python.
@Suite struct LlamaGGUFCLITests {
    static let source = TestSupport.testdata("golden/bnb-model/source")

    static func check(_ hf: String, _ gguf: String, _ type: String) throws {
        let r = try InteropTests.peer("llama_gguf_peer.py", ["check", hf, gguf, type])
        #expect(r.ok, r.summary)
    }

    /// bf16 source, GQA (4 heads, 2 KV heads), head_dim in config.json, untied lm_head:
    /// names, shapes, q/k rows in llama.cpp's order, norms in F32, the llama.* metadata.
    @Test(arguments: [("keep", [String]()), ("F32", ["--type", "F32"]), ("F16", ["--type", "f16"]), ("BF16", ["--dtype", "bf16"])])
    func plainTypes(_ type: String, _ options: [String]) throws {
        let dir = try TestSupport.tempDir("llama-gguf")
        defer { TestSupport.cleanup(dir) }
        let out = dir + "/m.gguf"
        try InteropTests.ftqOK(["convert", Self.source, "-o", out, "-q"] + options)
        try Self.check(Self.source, out, type)
        // Its manifest verifies like any other output.
        #expect(try TestSupport.ftq(["verify", out]).status == 0)
    }

    /// Tied embeddings (no lm_head: no output tensor) and Llama 3 RoPE scaling, written as
    /// rope_freqs.weight computed as convert_hf_to_gguf does.
    @Test func tiedEmbeddingsAndLlama3Rope() throws {
        let dir = try TestSupport.tempDir("llama-gguf-tied")
        defer { TestSupport.cleanup(dir) }
        try InteropTests.make("llama_gguf_peer.py", ["make-tied", Self.source, dir + "/tied"])
        try InteropTests.ftqOK(["convert", dir + "/tied", "-o", dir + "/m.gguf", "--type", "F16", "-q"])
        try Self.check(dir + "/tied", dir + "/m.gguf", "F16")
    }

    /// Quantized --type: the permuted rows are quantized, byte-identical to gguf-py (ggml).
    @Test(arguments: ["Q8_0", "Q4_0", "Q4_1"])
    func quantizedTypes(_ type: String) throws {
        let dir = try TestSupport.tempDir("llama-gguf-q")
        defer { TestSupport.cleanup(dir) }
        try InteropTests.make("llama_gguf_peer.py", ["make-random", dir + "/hf"])
        try InteropTests.ftqOK(["convert", dir + "/hf", "-o", dir + "/m.gguf", "--type", type, "-q"])
        try Self.check(dir + "/hf", dir + "/m.gguf", type)
    }

    /// K-quants fall back per tensor as llama-quantize does (rows of 64 are not a multiple of
    /// 256: Q4_K -> Q5_0), and say so.
    @Test func kQuantRowFallbackIsReported() throws {
        let dir = try TestSupport.tempDir("llama-gguf-k")
        defer { TestSupport.cleanup(dir) }
        try InteropTests.make("llama_gguf_peer.py", ["make-random", dir + "/hf"])
        let r = try InteropTests.ftqOK(["convert", dir + "/hf", "-o", dir + "/m.gguf", "--type", "Q4_K", "--json"])
        #expect(r.stderr.contains("model.layers.0.self_attn.q_proj.weight") && r.stderr.contains("Q5_0 instead of Q4_K"), "\(r.stderr)")
        let j = try #require(try JSONSerialization.jsonObject(with: TestSupport.ftq(["inspect", dir + "/m.gguf", "--json"]).stdoutData) as? [String: Any])
        let tensors = try #require(j["tensors"] as? [[String: Any]])
        let types = Dictionary(uniqueKeysWithValues: tensors.map { ($0["name"] as! String, ($0["dtype"] ?? $0["type"]) as? String ?? "") })
        #expect(types["blk.0.attn_q.weight"] == "Q5_0" && types["blk.0.attn_norm.weight"] == "F32", "\(types)")
    }

    /// Another model_type is refused for a GGUF output, naming it and the supported ones; a
    /// single .safetensors file keeps the generic conversion (names unchanged).
    @Test func otherArchitecturesAreRefused() throws {
        let dir = try TestSupport.tempDir("llama-gguf-other")
        defer { TestSupport.cleanup(dir) }
        try FileManager.default.createDirectory(atPath: dir + "/m", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.source + "/model.safetensors", toPath: dir + "/m/model.safetensors")
        let config = try String(contentsOfFile: Self.source + "/config.json", encoding: .utf8)
        try config.replacingOccurrences(of: "\"model_type\": \"llama\"", with: "\"model_type\": \"gpt_neox\"")
            .write(toFile: dir + "/m/config.json", atomically: true, encoding: .utf8)
        let refused = try TestSupport.ftq(["convert", dir + "/m", "-o", dir + "/m.gguf"])
        #expect(refused.status == 3 && refused.stderr.contains("[convert.architecture]") && refused.stderr.contains("\"gpt_neox\"")
                && refused.stderr.contains("qwen2") && refused.stderr.contains("mistral"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/m.gguf"))
        try InteropTests.ftqOK(["convert", dir + "/m/model.safetensors", "-o", dir + "/m.gguf", "-q"])
        let r = try InteropTests.ftqOK(["inspect", dir + "/m.gguf", "--json"])
        #expect(r.stdout.contains("model.layers.0.self_attn.q_proj.weight") && !r.stdout.contains("blk.0"))
    }

    /// What is not handled is refused, naming it, with nothing written.
    @Test func unsupportedInputsAreRefused() throws {
        let dir = try TestSupport.tempDir("llama-gguf-refuse")
        defer { TestSupport.cleanup(dir) }
        try FileManager.default.createDirectory(atPath: dir + "/m", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Self.source + "/model.safetensors", toPath: dir + "/m/model.safetensors")
        let config = try String(contentsOfFile: Self.source + "/config.json", encoding: .utf8)
        try config.replacingOccurrences(of: "\"rope_type\": \"default\"", with: "\"rope_type\": \"yarn\"")
            .write(toFile: dir + "/m/config.json", atomically: true, encoding: .utf8)
        var r = try TestSupport.ftq(["convert", dir + "/m", "-o", dir + "/m.gguf"])
        #expect(r.status == 3 && r.stderr.contains("\"yarn\"") && r.stderr.contains("[convert.llama-rope]"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/m.gguf"))
        r = try TestSupport.ftq(["convert", Self.source, "-o", dir + "/x.gguf", "--type", "Q3_K"])
        #expect(r.status == 2 && r.stderr.contains("\"Q3_K\""), "\(r.stderr)")
        r = try TestSupport.ftq(["convert", Self.source, "-o", dir + "/x.gguf", "--type", "F16", "--dtype", "f32"])
        #expect(r.status == 2 && r.stderr.contains("[usage.conflict]"), "\(r.stderr)")
    }

    /// A byte-level BPE tokenizer.json becomes llama.cpp's gpt2 vocabulary: tokens padded to
    /// vocab_size, token types, merges, special ids, add_bos, the chat template; the
    /// pre-tokenizer's name is derived from its definition.
    @Test(arguments: ["gpt-2", "llama-bpe"])
    func bpeTokenizer(_ pre: String) throws {
        let dir = try TestSupport.tempDir("llama-gguf-tok")
        defer { TestSupport.cleanup(dir) }
        try InteropTests.make("llama_gguf_peer.py", ["make-random", dir + "/hf"])
        try InteropTests.make("llama_gguf_peer.py", ["add-tokenizer", dir + "/hf", pre])
        try InteropTests.ftqOK(["convert", dir + "/hf", "-o", dir + "/m.gguf", "--type", "Q8_0", "-q"])
        try Self.check(dir + "/hf", dir + "/m.gguf", "Q8_0")
        let r = try InteropTests.ftqOK(["inspect", dir + "/m.gguf", "--json"])
        #expect(r.stdout.contains("\"\(pre)\""), "tokenizer.ggml.pre should be \(pre)")
    }

    /// A pre-tokenizer ftq cannot name is refused, naming it; --tokenizer-pre gives the name.
    @Test func unknownPreTokenizerNeedsAName() throws {
        let dir = try TestSupport.tempDir("llama-gguf-pre")
        defer { TestSupport.cleanup(dir) }
        try InteropTests.make("llama_gguf_peer.py", ["make-random", dir + "/hf"])
        try InteropTests.make("llama_gguf_peer.py", ["add-tokenizer", dir + "/hf", "unknown"])
        var r = try TestSupport.ftq(["convert", dir + "/hf", "-o", dir + "/m.gguf"])
        #expect(r.status == 3 && r.stderr.contains("Metaspace") && r.stderr.contains("--tokenizer-pre"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/m.gguf"))
        try InteropTests.ftqOK(["convert", dir + "/hf", "-o", dir + "/m.gguf", "--tokenizer-pre", "default", "-q"])
        r = try InteropTests.ftqOK(["inspect", dir + "/m.gguf", "--json"])
        #expect(r.stdout.contains("tokenizer.ggml.pre") && r.stdout.contains("\"default\""))
        // Not a Llama directory: the option does not apply.
        r = try TestSupport.ftq(["convert", Self.source + "/model.safetensors", "-o", dir + "/x.gguf", "--tokenizer-pre", "gpt-2"])
        #expect(r.status == 2 && r.stderr.contains("[usage.conflict]"), "\(r.stderr)")
    }
}
