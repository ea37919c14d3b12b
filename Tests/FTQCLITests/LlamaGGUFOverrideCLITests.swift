import Foundation
import Testing

/// `ftq convert` of bitsandbytes Llama checkpoints to llama.cpp GGUF, and llama-quantize's
/// per-tensor type options (formats/llama-gguf.md, "bitsandbytes inputs", "Type overrides"),
/// checked by tools/interop/llama_gguf_override_peer.py: every tensor against values computed
/// in numpy from the bitsandbytes state (not from ftq), permuted as convert_hf_to_gguf does,
/// typed as llama-quantize types it, and quantized by gguf-py.
@Suite struct LlamaGGUFOverrideCLITests {
    static let golden = TestSupport.testdata("golden/bnb-model")

    static func check(_ src: String, _ gguf: String, _ options: [String]) throws {
        let r = try InteropTests.peer("llama_gguf_override_peer.py", ["check", src, gguf] + options)
        #expect(r.ok, r.summary)
    }

    /// The checkpoints transformers + bitsandbytes saved (NF4 with double quantization, FP4
    /// without, LLM.int8): each quantized weight dequantized, its companions consumed, nothing
    /// of quantization_config written. Without --type a weight keeps its quant state's dtype
    /// (int8: config.json's dtype); rows of 48 and 90 fill no quantized block, so Q4_K falls
    /// back to F16, said on stderr.
    @Test(arguments: [("nf4", [String]()), ("nf4", ["--type", "F32"]), ("fp4", ["--type", "f16"]),
                      ("int8", []), ("int8", ["--type", "BF16"]), ("nf4", ["--type", "Q4_K"])])
    func bitsandbytesGoldens(_ variant: String, _ options: [String]) throws {
        let dir = try TestSupport.tempDir("llama-gguf-bnb")
        defer { TestSupport.cleanup(dir) }
        let out = dir + "/m.gguf"
        let r = try InteropTests.ftqOK(["convert", Self.golden + "/" + variant, "-o", out] + options)
        try Self.check(Self.golden + "/" + variant, out, options)
        if options.contains("Q4_K") {
            #expect(r.stderr.contains("\"model.layers.0.self_attn.q_proj.weight\" [48, 48]: rows of 48 are not a multiple of 32, kept as F16"), "\(r.stderr)")
        }
        #expect(try TestSupport.ftq(["verify", out]).status == 0)
    }

    /// A bitsandbytes checkpoint whose rows fill blocks (made by ftq quantize, byte-identical to
    /// bitsandbytes): weights dequantized slice by slice and quantized, legacy types byte for
    /// byte against gguf-py; K-quants against the same conversion of `ftq dequantize`'s float32
    /// output, ffn_down (rows of 320) falling back.
    @Test(arguments: [("--nf4", "Q4_0"), ("--nf4", "Q5_1"), ("--nf4", "Q4_K"), ("--int8", "Q8_0"), ("--int8", "Q6_K")])
    func bitsandbytesQuantized(_ layout: String, _ type: String) throws {
        let dir = try TestSupport.tempDir("llama-gguf-bnbq")
        defer { TestSupport.cleanup(dir) }
        try InteropTests.make("llama_gguf_override_peer.py", ["make-random", dir + "/hf"])
        try InteropTests.ftqOK(["quantize", dir + "/hf", layout, "-o", dir + "/bnb", "-q"])
        var extra: [String] = []
        if type.hasSuffix("_K") {
            try InteropTests.ftqOK(["dequantize", dir + "/bnb", "-o", dir + "/deq", "--dtype", "f32", "-q"])
            try InteropTests.ftqOK(["convert", dir + "/deq", "-o", dir + "/ref.gguf", "--type", type, "-q"])
            extra = ["--kquant-ref", dir + "/ref.gguf"]
        }
        let r = try InteropTests.ftqOK(["convert", dir + "/bnb", "-o", dir + "/m.gguf", "--type", type])
        try Self.check(dir + "/bnb", dir + "/m.gguf", ["--type", type] + extra)
        if type.hasSuffix("_K") {
            #expect(r.stderr.contains("\"model.layers.1.mlp.down_proj.weight\" [256, 320]: rows of 320 are not a multiple of 256"), "\(r.stderr)")
        }
    }

    /// llama-quantize's precedence: --token-embedding-type and --output-tensor-type first, then
    /// the first --tensor-type whose pattern (lowercased) occurs in the GGUF name, then --type;
    /// K-quant fallbacks still apply to overridden types and are reported; a pattern that
    /// matches nothing is noted. On a full-precision and on an NF4 checkpoint.
    @Test(arguments: [false, true])
    func overrides(_ bnb: Bool) throws {
        let dir = try TestSupport.tempDir("llama-gguf-override")
        defer { TestSupport.cleanup(dir) }
        try InteropTests.make("llama_gguf_override_peer.py", ["make-random", dir + "/hf"])
        var src = dir + "/hf"
        if bnb {
            try InteropTests.ftqOK(["quantize", src, "--nf4", "-o", dir + "/bnb", "-q"])
            try InteropTests.ftqOK(["dequantize", dir + "/bnb", "-o", dir + "/deq", "--dtype", "f32", "-q"])
            src = dir + "/bnb"
        }
        let refSource = bnb ? dir + "/deq" : dir + "/hf"
        for t in ["Q4_K", "Q6_K"] {
            try InteropTests.ftqOK(["convert", refSource, "-o", dir + "/ref-\(t).gguf", "--type", t, "-q"])
        }
        let options = ["--type", "Q4_K", "--token-embedding-type", "q8_0", "--output-tensor-type", "F16",
                       "--tensor-type", "token_embd=Q4_1", "--tensor-type", "blk\\.1\\.ffn_.*=q6_k",
                       "--tensor-type", "ffn_down=Q4_0", "--tensor-type", "ATTN_V=bf16", "--tensor-type", "attn_v=Q5_0",
                       "--tensor-type", "lm_head=Q8_0"]
        let r = try InteropTests.ftqOK(["convert", src, "-o", dir + "/m.gguf"] + options)
        try Self.check(src, dir + "/m.gguf", options + ["--kquant-ref", dir + "/ref-Q4_K.gguf", "--kquant-ref", dir + "/ref-Q6_K.gguf"])
        // blk.1.ffn_down takes Q6_K (the first match), whose rows of 320 fall back to Q8_0.
        #expect(r.stderr.contains("\"model.layers.1.mlp.down_proj.weight\" [256, 320]: rows of 320 are not a multiple of 256, Q8_0 instead of Q6_K"), "\(r.stderr)")
        #expect(r.stderr.contains("--tensor-type lm_head=Q8_0 matches no 2-D tensor"), "\(r.stderr)")
        let j = try #require(try JSONSerialization.jsonObject(with: TestSupport.ftq(["inspect", dir + "/m.gguf", "--json"]).stdoutData) as? [String: Any])
        let tensors = try #require(j["tensors"] as? [[String: Any]])
        let types = Dictionary(uniqueKeysWithValues: tensors.map { ($0["name"] as! String, ($0["dtype"] ?? $0["type"]) as? String ?? "") })
        #expect(types["token_embd.weight"] == "Q8_0" && types["output.weight"] == "F16" && types["blk.0.attn_v.weight"] == "BF16"
                && types["blk.0.ffn_down.weight"] == "Q4_0" && types["blk.1.ffn_down.weight"] == "Q8_0"
                && types["blk.1.ffn_up.weight"] == "Q6_K" && types["blk.0.ffn_up.weight"] == "Q4_K", "\(types)")
    }

    /// Overrides without --type: the other 2-D weights keep the checkpoint's dtype (F32);
    /// general.file_type is absent (the types are mixed) and quantization_version is written.
    @Test func overridesWithoutType() throws {
        let dir = try TestSupport.tempDir("llama-gguf-override-keep")
        defer { TestSupport.cleanup(dir) }
        try InteropTests.make("llama_gguf_override_peer.py", ["make-random", dir + "/hf"])
        let options = ["--tensor-type", "attn_(q|k)=Q8_0", "--output-tensor-type", "BF16"]
        try InteropTests.ftqOK(["convert", dir + "/hf", "-o", dir + "/m.gguf", "-q"] + options)
        try Self.check(dir + "/hf", dir + "/m.gguf", options)
    }

    /// The manifest records the options in one spelling (types canonical, patterns lowercased
    /// as they are matched, rules in their order), so equivalent command lines give the same
    /// manifest.
    @Test func manifestIsCanonical() throws {
        let dir = try TestSupport.tempDir("llama-gguf-override-manifest")
        defer { TestSupport.cleanup(dir) }
        let src = Self.golden + "/nf4"
        try InteropTests.ftqOK(["convert", src, "-o", dir + "/m.gguf", "-q", "--type", "q8_0", "--tensor-type", "ATTN_V=f16",
                                "--token-embedding-type", "bf16", "--tensor-type", "ffn=Q4_0"])
        let first = try Data(contentsOf: URL(fileURLWithPath: dir + "/m.gguf.manifest.json"))
        try InteropTests.ftqOK(["convert", src, "--token-embedding-type", "BF16", "--tensor-type", "attn_v=F16", "--type", "Q8_0",
                                "--tensor-type", "ffn=q4_0", "-o", dir + "/m.gguf", "--force", "-q"])
        let second = try Data(contentsOf: URL(fileURLWithPath: dir + "/m.gguf.manifest.json"))
        #expect(first == second)
        let m = try #require(try JSONSerialization.jsonObject(with: first) as? [String: Any])
        let command = try #require(m["command"] as? [String])
        #expect(Array(command.dropFirst(5)) == ["--type", "Q8_0", "--token-embedding-type", "BF16",
                                                "--tensor-type", "attn_v=F16", "--tensor-type", "ffn=Q4_0"], "\(command)")
        let options = try #require(m["options"] as? [String: Any])
        #expect(options["token_embedding_type"] as? String == "BF16" && options["output_tensor_type"] is NSNull, "\(options)")
        let rules = try #require(options["tensor_types"] as? [[String: String]])
        #expect(rules == [["pattern": "attn_v", "type": "F16"], ["pattern": "ffn", "type": "Q4_0"]], "\(rules)")
    }

    /// Bad options are usage errors naming them; a damaged bitsandbytes checkpoint is refused
    /// naming the missing part. Nothing is written either way.
    @Test func refusals() throws {
        let dir = try TestSupport.tempDir("llama-gguf-override-refuse")
        defer { TestSupport.cleanup(dir) }
        let src = Self.golden + "/source"
        let cases: [([String], String)] = [
            (["--tensor-type", "attn_v=Q3_K"], "\"Q3_K\""),
            (["--token-embedding-type", "q2_k"], "\"q2_k\""),
            (["--output-tensor-type", "F64"], "\"F64\""),
            (["--tensor-type", "attn_v"], "PATTERN=TYPE"),
            (["--tensor-type", "=Q8_0"], "PATTERN=TYPE"),
            (["--tensor-type", "attn_v="], "PATTERN=TYPE"),
            (["--tensor-type", "blk.(0=Q8_0"], "\"blk.(0\" is not a valid regular expression"),
        ]
        for (options, mention) in cases {
            let r = try TestSupport.ftq(["convert", src, "-o", dir + "/m.gguf"] + options)
            #expect(r.status == 2 && r.stderr.contains(mention), "\(options): \(r.status) \(r.stderr)")
        }
        for output in ["/m.safetensors", "/hf"] {
            let r = try TestSupport.ftq(["convert", src, "-o", dir + output, "--tensor-type", "attn_v=Q8_0"])
            #expect(r.status == 2 && r.stderr.contains("[usage.conflict]") && r.stderr.contains("--tensor-type"), "\(r.stderr)")
        }
        try InteropTests.make("llama_gguf_override_peer.py",
                              ["drop-tensor", Self.golden + "/nf4", dir + "/broken", "model.layers.0.self_attn.q_proj.weight.absmax"])
        let r = try TestSupport.ftq(["convert", dir + "/broken", "-o", dir + "/m.gguf", "--type", "Q8_0"])
        #expect(r.status == 3 && r.stderr.contains("\"model.layers.0.self_attn.q_proj.weight.absmax\" is missing"), "\(r.stderr)")
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0 != "broken" }
        #expect(left.isEmpty, "\(left)")
    }

    /// `ftq quantize --type` takes the same options: requantizing llama.cpp's own Q4_0 file,
    /// token_embd, output and the attn_v weights take their own types (the first matching
    /// --tensor-type wins, its pattern lowercased), every other 2-D weight Q4_0, each
    /// byte-identical to gguf-py's quantization (numpy's rounding for F16) of the decoded
    /// source; with --nf4 the options are a usage conflict.
    @Test func quantizeTakesTheOverrides() throws {
        let dir = try TestSupport.tempDir("quantize-override")
        defer { TestSupport.cleanup(dir) }
        let src = TestSupport.testdata("llamacpp/tiny-llama-Q4_0.gguf")
        try InteropTests.ftqOK(["quantize", src, "--type", "Q4_0", "-o", dir + "/q.gguf", "-q", "--token-embedding-type", "f16",
                                "--output-tensor-type", "Q8_0", "--tensor-type", "ATTN_V=Q5_1", "--tensor-type", "attn_v=Q8_0"])
        let r = try InteropTests.peer("quantize_peer.py", ["check", src, dir + "/q.gguf", "Q4_0", "token_embd.weight=F16",
                                                           "output.weight=Q8_0", "blk.0.attn_v.weight=Q5_1", "blk.1.attn_v.weight=Q5_1"])
        #expect(r.ok, r.summary)
        #expect(try TestSupport.ftq(["verify", dir + "/q.gguf"]).status == 0)
        let manifest = try String(contentsOfFile: dir + "/q.gguf.manifest.json", encoding: .utf8)
        #expect(manifest.contains("\"tensor_types\"") && manifest.contains("\"attn_v\""), "\(manifest)")
        let bad = try TestSupport.ftq(["quantize", src, "--nf4", "-o", dir + "/n.safetensors", "--tensor-type", "attn_v=Q8_0"])
        #expect(bad.status == 2 && bad.stderr.contains("[usage.conflict]"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/n.safetensors"))
    }
}
