import Foundation
import Testing

/// `ftq convert MODEL.gguf -o HFDIR` for Llama GGUFs (formats/llama-gguf.md, "GGUF to Hugging
/// Face"), checked with gguf-py, numpy and safetensors (tools/interop/gguf_to_hf_peer.py): the
/// directory against the GGUF (names, q/k rows put back, values bit for bit, config.json,
/// tokenizer files), and the round trip Hugging Face -> GGUF -> Hugging Face -> GGUF, whose two
/// GGUFs hold the same key-values and the same tensor bytes. That transformers loads the
/// directories and gives the original checkpoint's logits and token ids is checked by hand
/// with `gguf_to_hf_peer.py logits` and `tokenize` (torch and transformers).
@Suite struct GGUFToHFCLITests {
    static let source = TestSupport.testdata("golden/bnb-model/source")

    static func peer(_ args: [String]) throws -> InteropTests.PeerReport {
        try InteropTests.peer("gguf_to_hf_peer.py", args)
    }

    /// HF -> GGUF (`options`) -> HF -> GGUF. The directory is named as the first (whose name
    /// is `general.name`), so that every key-value comes back. Returns the peer's comparison.
    @discardableResult
    static func roundTrip(_ hf: String, in dir: String, _ options: [String], dtype: String = "keep") throws -> InteropTests.PeerReport {
        let a = dir + "/a.gguf", b = dir + "/b.gguf"
        try InteropTests.ftqOK(["convert", hf, "-o", a, "-q"] + options)
        try FileManager.default.createDirectory(atPath: dir + "/back", withIntermediateDirectories: true)
        let back = dir + "/back/" + (hf as NSString).lastPathComponent
        try InteropTests.ftqOK(["convert", a, "-o", back, "-q"])
        let check = try peer(["check", a, back, dtype])
        #expect(check.ok, check.summary)
        // The directory's manifest verifies like any other output.
        #expect(try TestSupport.ftq(["verify", back]).status == 0)
        try InteropTests.ftqOK(["convert", back, "-o", b, "-q"])
        let same = try peer(["same", a, b])
        #expect(same.ok, same.summary)
        return same
    }

    /// The test checkpoint (GQA, head_dim in config.json, untied lm_head) as F32 and F16:
    /// lossless both ways. All-F32 tensors keep their order too, so the GGUFs are the same bytes.
    @Test(arguments: ["F32", "F16"])
    func roundTripTestCheckpoint(_ type: String) throws {
        let dir = try TestSupport.tempDir("gguf-hf")
        defer { TestSupport.cleanup(dir) }
        let same = try Self.roundTrip(Self.source, in: dir, ["--type", type])
        if type == "F32" { #expect(same.json["identical_files"] as? Bool == true, same.summary) }
        // F16 weights stay F16 (norms F32), and config.json says float16.
        let config = try String(contentsOfFile: dir + "/back/source/config.json", encoding: .utf8)
        #expect(config.contains(type == "F32" ? "\"torch_dtype\": \"float32\"" : "\"torch_dtype\": \"float16\""), "\(config)")
    }

    /// Tied embeddings (no output.weight: tie_word_embeddings) and Llama 3 RoPE scaling
    /// (rope_freqs.weight back to rope_scaling, recomputed to the same factors).
    @Test(arguments: ["F32", "F16"])
    func roundTripTiedLlama3Rope(_ type: String) throws {
        let dir = try TestSupport.tempDir("gguf-hf-tied")
        defer { TestSupport.cleanup(dir) }
        try InteropTests.make("llama_gguf_peer.py", ["make-tied", Self.source, dir + "/tied"])
        try Self.roundTrip(dir + "/tied", in: dir, ["--type", type])
        let config = try String(contentsOfFile: dir + "/back/tied/config.json", encoding: .utf8)
        #expect(config.contains("\"tie_word_embeddings\": true") && config.contains("\"rope_type\": \"llama3\""), "\(config)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/back/tied/tokenizer.json"))
    }

    /// A byte-level BPE vocabulary (gpt-2 and llama-bpe pre-tokenizers) becomes tokenizer.json
    /// and tokenizer_config.json that give back the same tokens, types, merges, special ids,
    /// add_bos_token and chat template.
    @Test(arguments: ["gpt-2", "llama-bpe"])
    func roundTripTokenizer(_ pre: String) throws {
        let dir = try TestSupport.tempDir("gguf-hf-tok")
        defer { TestSupport.cleanup(dir) }
        try InteropTests.make("llama_gguf_peer.py", ["make-random", dir + "/hf"])
        try InteropTests.make("llama_gguf_peer.py", ["add-tokenizer", dir + "/hf", pre])
        let same = try Self.roundTrip(dir + "/hf", in: dir, [])
        #expect(same.json["identical_files"] as? Bool == true, same.summary)
        for name in ["tokenizer.json", "tokenizer_config.json", "generation_config.json"] {
            #expect(FileManager.default.fileExists(atPath: dir + "/back/hf/" + name), "\(name)")
        }
    }

    /// A SentencePiece (`llama`) vocabulary from testdata/llama-vocab/tokenizer.model (with
    /// added, control and padding tokens) becomes tokenizer.model, tokenizer.json and
    /// tokenizer_config.json: the GGUFs before and after are the same bytes; sentencepiece
    /// encodes and decodes with the written tokenizer.model as with the original, and
    /// transformers' AutoTokenizer loads the directory and gives the same ids.
    @Test func roundTripSentencePiece() throws {
        let dir = try TestSupport.tempDir("gguf-hf-spm")
        defer { TestSupport.cleanup(dir) }
        try InteropTests.make("llama_vocab_peer.py", ["make", dir + "/hf", "llama", "spm"])
        let same = try Self.roundTrip(dir + "/hf", in: dir, [])
        #expect(same.json["identical_files"] as? Bool == true, same.summary)
        let spm = try Self.peer(["spm", TestSupport.testdata("llama-vocab/tokenizer.model"), dir + "/back/hf"])
        #expect(spm.ok, spm.summary)
    }

    /// Quantized GGUFs: tensors decoded as gguf-py decodes them (q/k rows put back after
    /// decoding), to F32 by default or to --dtype; sharded like any directory output.
    @Test(arguments: [("Q8_0", "keep"), ("Q5_0", "BF16"), ("Q4_1", "F16")])
    func quantizedGGUF(_ type: String, _ dtype: String) throws {
        let dir = try TestSupport.tempDir("gguf-hf-q")
        defer { TestSupport.cleanup(dir) }
        try InteropTests.make("llama_gguf_peer.py", ["make-random", dir + "/hf"])
        try InteropTests.ftqOK(["convert", dir + "/hf", "-o", dir + "/q.gguf", "--type", type, "-q"])
        let out = dir + "/out"
        let options = dtype == "keep" ? [] : ["--dtype", dtype.lowercased()]
        try InteropTests.ftqOK(["convert", dir + "/q.gguf", "-o", out, "-q", "--max-shard-size", "100KB"] + options)
        #expect(FileManager.default.fileExists(atPath: out + "/model.safetensors.index.json"))
        let check = try Self.peer(["check", dir + "/q.gguf", out, dtype])
        #expect(check.ok, check.summary)
        #expect(try TestSupport.ftq(["verify", out]).status == 0)
    }

    /// llama.cpp's own files (testdata/llamacpp: Q4_0 and Q4_K_M, with Q4_K, Q6_K, Q5_0 and
    /// Q8_0 tensors and a SentencePiece vocabulary, which writes no tokenizer files).
    @Test(arguments: [("tiny-llama-Q4_0", "keep"), ("tiny-llama-Q4_K_M", "keep"), ("tiny-llama-Q4_K_M", "BF16")])
    func llamaCppFiles(_ name: String, _ dtype: String) throws {
        let dir = try TestSupport.tempDir("gguf-hf-llamacpp")
        defer { TestSupport.cleanup(dir) }
        let gguf = TestSupport.testdata("llamacpp/\(name).gguf")
        let options = dtype == "keep" ? [] : ["--dtype", dtype.lowercased()]
        let r = try InteropTests.ftqOK(["convert", gguf, "-o", dir + "/out", "-q"] + options)
        // 2 byte tokens of 256: sentencepiece could not load them, so no tokenizer files.
        #expect(r.stderr.contains("2 byte tokens, where sentencepiece needs all 256 or none; no tokenizer files written"), "\(r.stderr)")
        let check = try Self.peer(["check", gguf, dir + "/out", dtype])
        #expect(check.ok, check.summary)
    }

    /// A GGUF of another architecture keeps the generic conversion (names unchanged), as does
    /// one labelled llama without llama.* hyperparameters.
    @Test func otherArchitecturesKeepTheGenericConversion() throws {
        let dir = try TestSupport.tempDir("gguf-hf-other")
        defer { TestSupport.cleanup(dir) }
        try InteropTests.ftqOK(["convert", Self.source, "-o", dir + "/a.gguf", "--type", "F32", "-q"])
        try InteropTests.make("gguf_to_hf_peer.py", ["edit", dir + "/a.gguf", dir + "/g.gguf", "arch:gpt2"])
        try InteropTests.ftqOK(["convert", dir + "/g.gguf", "-o", dir + "/out", "-q"])
        let r = try InteropTests.ftqOK(["inspect", dir + "/out", "--json"])
        #expect(r.stdout.contains("blk.0.attn_q.weight") && !r.stdout.contains("self_attn"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/config.json"))
    }

    /// What cannot be converted exactly is refused, naming it, with nothing written.
    @Test(arguments: [
        ("drop:llama.embedding_length", "\"llama.embedding_length\" is missing", "[convert.llama-metadata]"),
        ("drop:llama.attention.layer_norm_rms_epsilon", "\"llama.attention.layer_norm_rms_epsilon\" is missing", "[convert.llama-metadata]"),
        ("rename:blk.0.ffn_up.weight:blk.0.ffn_upx.weight", "\"blk.0.ffn_upx.weight\" has no Hugging Face Llama name", "[convert.llama-tensor]"),
        ("drop-tensor:blk.1.ffn_down.weight", "\"blk.1.ffn_down.weight\" is missing", "[convert.llama-tensor]"),
        ("scale:rope_freqs.weight", "is not Llama 3 RoPE scaling", "[convert.llama-rope]"),
    ])
    func refusals(_ op: String, _ says: String, _ code: String) throws {
        let dir = try TestSupport.tempDir("gguf-hf-refuse")
        defer { TestSupport.cleanup(dir) }
        try InteropTests.make("llama_gguf_peer.py", ["make-tied", Self.source, dir + "/tied"])
        try InteropTests.ftqOK(["convert", dir + "/tied", "-o", dir + "/a.gguf", "-q"])
        try InteropTests.make("gguf_to_hf_peer.py", ["edit", dir + "/a.gguf", dir + "/x.gguf", op])
        let r = try TestSupport.ftq(["convert", dir + "/x.gguf", "-o", dir + "/out"])
        #expect(r.status == 3 && r.stderr.contains(says) && r.stderr.contains(code), "\(r.stderr)")
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(left == ["a.gguf", "a.gguf.manifest.json", "a.gguf.sha256", "tied", "x.gguf"], "\(left)")
    }

    /// A fuzzing finding: a GGUF claiming far more layers than it has tensors for
    /// (testdata/malformed-gguf-to-hf) is refused at the first missing tensor, at once, instead of
    /// building the names of every claimed layer first.
    @Test func claimedLayersBeyondTheTensors() throws {
        let dir = try TestSupport.tempDir("gguf-hf-layers")
        defer { TestSupport.cleanup(dir) }
        let start = Date()
        let r = try TestSupport.ftq(["convert", TestSupport.testdata("malformed-gguf-to-hf/llama_block_count_100M.gguf"), "-o", dir + "/out"])
        #expect(r.status == 3 && r.stderr.contains("\"blk.2.attn_norm.weight\" is missing (llama.block_count is 100000000)")
                && r.stderr.contains("[convert.llama-tensor]"), "\(r.stderr)")
        #expect(Date().timeIntervalSince(start) < 20, "took \(Date().timeIntervalSince(start)) s")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }
}
