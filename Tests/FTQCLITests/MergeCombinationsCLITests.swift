import Foundation
import Testing
import FTQFormats

/// `ftq merge` of modules_to_save with several weighted adapters and with GGUF bases, and of DoRA
/// adapters with fan_in_fan_out and into bitsandbytes and GGUF bases, against PEFT
/// (tools/golden/make_peft_more.py, testdata/golden/peft-more/README.md), PEFT's merges converted
/// by llama.cpp's rule (tools/interop/gguf_lora_peer.py), gguf-py and a numpy reference
/// (tools/interop/gguf_dora_peer.py).
@Suite struct MergeCombinationsCLITests {
    static let golden = TestSupport.testdata("golden/peft")
    static let more = TestSupport.testdata("golden/peft-more")
    static let source = TestSupport.testdata("golden/bnb-model/source")
    static let peer = TestSupport.tool("interop/gguf_lora_peer.py")

    static func data(_ p: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: p)) }

    /// modules_to_save with --weights: PEFT's combined adapter uses no trained copy, whichever
    /// adapter saved it (the base's lm_head is kept, byte-identical to PEFT); two adapters saving
    /// the same module are refused, as PEFT refuses them.
    @Test(arguments: [(["llama-save", "llama-lora"], "first"), (["llama-lora", "llama-save"], "second")])
    func modulesToSaveWithWeightedAdapters(_ adapters: [String], _ tag: String) throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let out = dir + "/m.safetensors"
        var r = try TestSupport.ftq(["merge", Self.source] + adapters.map { Self.golden + "/" + $0 } + ["--weights", "0.7,0.3", "-o", out, "--json", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.data(out) == Self.data(Self.more + "/merged-cat-save-\(tag)-bf16/model.safetensors"))
        let doc = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        #expect(doc["unused_modules_to_save"] as? [String] == ["lm_head.weight"])
        r = try TestSupport.ftq(["merge", Self.source, Self.golden + "/llama-save", Self.golden + "/llama-save", "--weights", "0.7,0.3", "-o", dir + "/x.safetensors"])
        #expect(r.status == 3 && r.stderr.contains("lm_head.weight") && r.stderr.contains("add_weighted_adapter"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.safetensors"))
        // PEFT's own refusal of that combination, recorded by the golden script.
        #expect(String(decoding: try Self.data(Self.more + "/cat-save-refused.txt"), as: UTF8.self).contains("modules_to_save"))
    }

    /// A GGUF base with modules_to_save (lm_head -> output.weight) or a DoRA adapter (q_proj rows
    /// in llama.cpp's order): PEFT's merge into the Hugging Face checkpoint converted the same way.
    @Test(arguments: [("golden/peft/llama-save", "golden/peft/merged-llama-save-bf16"),
                      ("golden/peft-dora/llama-dora", "golden/peft-dora/merged-llama-dora-bf16"),
                      ("golden/peft-dora/llama-dora-rslora", "golden/peft-dora/merged-llama-dora-rslora-bf16")])
    func ggufBaseLikePEFT(_ adapter: String, _ merged: String) throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        var r = try TestSupport.python(Self.peer, ["make", Self.source, dir + "/b.gguf"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.ftq(["merge", dir + "/b.gguf", TestSupport.testdata(adapter), "-o", dir + "/m.gguf", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.python(Self.peer, ["check", TestSupport.testdata(merged) + "/model.safetensors", Self.source + "/config.json", dir + "/m.gguf"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(try TestSupport.ftq(["verify", dir + "/m.gguf"]).status == 0)
    }

    /// A Q8_0 GGUF base: a modules_to_save copy of lm_head and DoRA-merged weights are quantized
    /// with the tensor's type (gguf-py's blocks of the --dequantize output), the error reported;
    /// with --dequantize the copy is the adapter's float32 values, and the DoRA merge equals the
    /// numpy reference bit for bit.
    @Test func quantizedGGUFBaseWithModulesToSaveAndDoRA() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        var r = try TestSupport.python(Self.peer, ["make", Self.golden + "/qbase-bf16", dir + "/b.gguf"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.ftq(["quantize", dir + "/b.gguf", "--type", "Q8_0", "-o", dir + "/bq.gguf", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        let save = TestSupport.testdata("golden/peft-qsave/qbase-save-lora"), dora = Self.more + "/qbase-dora"
        for (adapter, tag, names) in [(save, "s", ["blk.0.attn_q.weight", "blk.0.ffn_down.weight", "output.weight"]),
                                      (dora, "d", ["blk.0.attn_q.weight", "blk.0.ffn_down.weight"])] {
            r = try TestSupport.ftq(["merge", dir + "/bq.gguf", adapter, "-o", dir + "/\(tag).gguf", "--json", "-q"])
            #expect(r.status == 0, "\(r.stderr)")
            let doc = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
            let rep = try #require(doc["requantization_error"] as? [String: Any])
            #expect(Set((rep["tensors"] as! [[String: Any]]).map { $0["name"] as! String }) == Set(names))
            r = try TestSupport.ftq(["merge", dir + "/bq.gguf", adapter, "-o", dir + "/\(tag)-full.gguf", "--dequantize", "-q"])
            #expect(r.status == 0, "\(r.stderr)")
            r = try TestSupport.python(Self.peer, ["requant-check", dir + "/\(tag)-full.gguf", dir + "/\(tag).gguf"])
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        }
        r = try TestSupport.python(TestSupport.tool("interop/gguf_dora_peer.py"),
                                   ["check", dir + "/bq.gguf", dora, Self.golden + "/qbase-bf16/config.json", dir + "/d-full.gguf"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        // The copy, written in full precision: the adapter's float32 lm_head.
        let full = try ModelOpener.open(dir + "/s-full.gguf")
        let out = try #require(full.tensors.first { $0.name == "output.weight" })
        let a = try SafetensorsFile.open(save + "/adapter_model.safetensors")
        let lm = try #require(a.tensors.first { $0.name == "base_model.model.lm_head.weight" })
        #expect(try full.read(out) == a.read(lm))
    }

    /// DoRA into GPT-2's Conv1D weights (fan_in_fan_out: output features are columns, their norm
    /// taken with the reduced dimension strided): byte-identical to PEFT.
    @Test func doraWithFanInFanOut() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let r = try TestSupport.ftq(["merge", Self.golden + "/gpt2-base", Self.more + "/gpt2-dora", "-o", dir + "/m.safetensors", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.data(dir + "/m.safetensors") == Self.data(Self.more + "/merged-gpt2-dora/model.safetensors"))
    }

    /// DoRA into bitsandbytes NF4 (double quantization) and int8 bases, as PEFT's Linear4bit and
    /// Linear8bitLt merge it on the CPU: byte-identical (the NF4 weights rounded to bf16 before
    /// they are quantized again, their quant states saying bfloat16).
    @Test(arguments: ["nf4", "int8"])
    func doraIntoABitsandbytesBase(_ tag: String) throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        var r = try TestSupport.ftq(["merge", Self.golden + "/qbase-\(tag)", Self.more + "/qbase-dora", "-o", dir + "/m.safetensors", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.data(dir + "/m.safetensors") == Self.data(Self.more + "/merged-qbase-dora-\(tag)/model.safetensors"))
        // --dequantize: full precision; the merged weights differ from the requantized ones.
        r = try TestSupport.ftq(["merge", Self.golden + "/qbase-\(tag)", Self.more + "/qbase-dora", "-o", dir + "/d.safetensors", "--dequantize", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try TestSupport.ftq(["verify", dir + "/d.safetensors"]).status == 0)
    }
}
