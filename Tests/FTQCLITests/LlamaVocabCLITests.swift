import Foundation
import Testing

/// `ftq convert HFDIR -o m.gguf` for SentencePiece-style vocabularies and Qwen2
/// (formats/llama-gguf.md, "Tokenizer", "When it applies"): every tokenizer.* key (name, type,
/// value), the architecture keys and the tensors, against what convert_hf_to_gguf writes,
/// computed with sentencepiece, tokenizers, transformers and gguf-py
/// (tools/interop/llama_vocab_peer.py).
@Suite struct LlamaVocabCLITests {
    static func convertAndCheck(_ arch: String, _ vocab: String) throws {
        let dir = try TestSupport.tempDir("llama-vocab-\(arch)-\(vocab)")
        defer { TestSupport.cleanup(dir) }
        try InteropTests.make("llama_vocab_peer.py", ["make", dir + "/hf", arch, vocab])
        try InteropTests.ftqOK(["convert", dir + "/hf", "-o", dir + "/m.gguf", "--type", "F32", "-q"])
        let r = try InteropTests.peer("llama_vocab_peer.py", ["check", dir + "/hf", dir + "/m.gguf"])
        #expect(r.ok, r.summary)
    }

    /// tokenizer.model: the llama vocabulary with sentencepiece's pieces, scores and types,
    /// padding to vocab_size, added_tokens.json and added_tokens_decoder entries (one that only
    /// looks special becomes CONTROL; "▁" of a user-defined one becomes a space).
    @Test func sentencePieceModel() throws { try Self.convertAndCheck("llama", "spm") }

    /// No tokenizer.model: a tokenizer.json BPE with byte fallback as gguf-py's LlamaHfVocab
    /// reads it (scores -1000, <0xXX> BYTE, named special tokens CONTROL, other added tokens
    /// USER_DEFINED), and the add_bos/add_sep flags of its TemplateProcessing.
    @Test func sentencePieceStyleTokenizerJSON() throws { try Self.convertAndCheck("llama", "hf") }

    /// Qwen2: qwen2.* keys (no vocab_size or rope.dimension_count), q/k/v biases, no q/k
    /// permutation, tied embeddings; its byte-level BPE vocabulary with pre-tokenizer "qwen2".
    @Test func qwen2() throws { try Self.convertAndCheck("qwen2", "bpe") }

    /// Qwen2 with a tokenizer.model takes the SentencePiece vocabulary, as convert_hf_to_gguf does.
    @Test func qwen2SentencePiece() throws { try Self.convertAndCheck("qwen2", "spm") }

    /// A damaged tokenizer.model, or a tokenizer.json whose tokens do not fill vocab_size, is
    /// refused, naming the file; nothing is written.
    @Test func damagedVocabulariesAreRefused() throws {
        let dir = try TestSupport.tempDir("llama-vocab-bad")
        defer { TestSupport.cleanup(dir) }
        try InteropTests.make("llama_vocab_peer.py", ["make", dir + "/hf", "llama", "spm"])
        let model = dir + "/hf/tokenizer.model"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: model))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: model))
        var r = try TestSupport.ftq(["convert", dir + "/hf", "-o", dir + "/m.gguf"])
        #expect(r.status == 3 && r.stderr.contains("[tokenizer.model]") && r.stderr.contains("tokenizer.model"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/m.gguf"))

        try InteropTests.make("llama_vocab_peer.py", ["make", dir + "/hf2", "llama", "hf"])
        let config = try String(contentsOfFile: dir + "/hf2/config.json", encoding: .utf8)
        try config.replacingOccurrences(of: "\"vocab_size\": 403", with: "\"vocab_size\": 410")
            .write(toFile: dir + "/hf2/config.json", atomically: true, encoding: .utf8)
        r = try TestSupport.ftq(["convert", dir + "/hf2", "-o", dir + "/m2.gguf"])
        #expect(r.status == 3 && r.stderr.contains("[convert.tokenizer]") && r.stderr.contains("403 tokens"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/m2.gguf"))
    }
}
