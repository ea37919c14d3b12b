import Foundation
import Testing
import FTQFormats

/// `ftq merge` against PEFT's merge_and_unload (tools/golden/make_peft.py,
/// testdata/golden/peft/README.md).
@Suite struct MergeCLITests {
    static let golden = TestSupport.testdata("golden/peft")
    static let source = TestSupport.testdata("golden/bnb-model/source")

    static func data(_ p: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: p)) }

    /// The bf16 source model, or its conversion to `dtype` under `dir` as PEFT's golden scripts
    /// made it with torch (exact widening, or rounding to f16).
    static func source(in dtype: String, _ dir: String) throws -> String {
        guard dtype != "bf16" else { return source }
        let r = try TestSupport.ftq(["convert", source, "-o", dir + "/base", "--dtype", dtype, "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        return dir + "/base"
    }

    @Test(arguments: ["llama-lora", "llama-rslora", "llama-save"], ["bf16", "f16", "f32"])
    func byteIdenticalToPEFT(_ adapter: String, _ dtype: String) throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let base = try Self.source(in: dtype, dir)
        let out = dir + "/m.safetensors"
        let r = try TestSupport.ftq(["merge", base, Self.golden + "/" + adapter, "-o", out, "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.data(out) == Self.data(Self.golden + "/merged-\(adapter)-\(dtype)/model.safetensors"))
        #expect(try TestSupport.ftq(["verify", out]).status == 0)
    }

    /// DoRA adapters (use_dora, one with rsLoRA and a rank pattern) merged into bf16, f16 and
    /// f32 bases: byte-identical to PEFT (tools/golden/make_peft_dora.py).
    @Test(arguments: ["llama-dora", "llama-dora-rslora"], ["bf16", "f16", "f32"])
    func doraByteIdenticalToPEFT(_ adapter: String, _ dtype: String) throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let golden = TestSupport.testdata("golden/peft-dora")
        let base = try Self.source(in: dtype, dir)
        let out = dir + "/m.safetensors"
        var r = try TestSupport.ftq(["merge", base, golden + "/" + adapter, "-o", out, "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.data(out) == Self.data(golden + "/merged-\(adapter)-\(dtype)/model.safetensors"))
        // With --weights PEFT drops DoRA magnitudes: refused, naming why, with nothing written.
        r = try TestSupport.ftq(["merge", base, golden + "/" + adapter, golden + "/" + adapter, "--weights", "0.5,0.5", "-o", dir + "/w.safetensors"])
        #expect(r.status == 3 && r.stderr.contains("DoRA") && r.stderr.contains("add_weighted_adapter"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/w.safetensors"))
    }

    /// Several adapters with weights: PEFT's add_weighted_adapter(combination_type="cat"), then
    /// merge_and_unload (modules in one adapter only included; negative weights too).
    @Test(arguments: [("0.7,0.3", "cat"), ("1.5,-0.25", "cat-negative")])
    func weightedAdaptersLikePEFTsCat(_ weights: String, _ tag: String) throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let out = dir + "/m.safetensors"
        let r = try TestSupport.ftq(["merge", Self.source, Self.golden + "/llama-lora", Self.golden + "/llama-rslora",
                                     "--weights", weights, "-o", out, "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.data(out) == Self.data(Self.golden + "/merged-\(tag)-bf16/model.safetensors"))
        let m = try JSONSerialization.jsonObject(with: Self.data(out + ".manifest.json")) as! [String: Any]
        #expect((m["command"] as! [String]).contains("--weights"))
        for bad in [["--weights", "0.7"], ["--weights", "0.7,x"], ["--weights", "0.7,inf"], []] {
            let e = try TestSupport.ftq(["merge", Self.source, Self.golden + "/llama-lora", Self.golden + "/llama-rslora", "-o", dir + "/x.safetensors"] + bad)
            #expect(e.status == 2, "\(bad): \(e.stderr)")
        }
        #expect(try TestSupport.ftq(["merge", Self.source, Self.golden + "/llama-lora", "--weights", "1", "-o", dir + "/x.safetensors"]).status == 2)
    }

    /// A tall weight's rows are split across threads: the bytes do not depend on --threads.
    @Test func threadsDoNotChangeTheBytes() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let m = "model.layers.0.mlp.up_proj"
        func values(_ n: Int, _ seed: UInt64) -> [UInt8] {
            var s = seed, out = [UInt8]()
            for _ in 0..<n {
                s = s &* 6364136223846793005 &+ 1442695040888963407
                out += withUnsafeBytes(of: (Float(Int64(bitPattern: s) >> 40) * 1e-8).bitPattern.littleEndian, Array.init)
            }
            return out
        }
        BnBQuantizeCLITests.safetensors([("\(m).weight", "F32", [700, 96], values(700 * 96, 1))], to: dir + "/base.safetensors")
        try FileManager.default.createDirectory(atPath: dir + "/ad", withIntermediateDirectories: true)
        try #"{"peft_type": "LORA", "r": 8, "lora_alpha": 16}"#.write(toFile: dir + "/ad/adapter_config.json", atomically: false, encoding: .utf8)
        BnBQuantizeCLITests.safetensors([("base_model.model.\(m).lora_A.weight", "F32", [8, 96], values(8 * 96, 2)),
                                         ("base_model.model.\(m).lora_B.weight", "F32", [700, 8], values(700 * 8, 3))],
                                        to: dir + "/ad/adapter_model.safetensors")
        var outs: [Data] = []
        for t in ["1", "2", "3"] {
            let r = try TestSupport.ftq(["merge", dir + "/base.safetensors", dir + "/ad", "-o", dir + "/o\(t).safetensors", "--threads", t, "-q"])
            #expect(r.status == 0, "\(r.stderr)")
            outs.append(try Self.data(dir + "/o\(t).safetensors"))
        }
        let base = try Self.data(dir + "/base.safetensors")
        #expect(outs[0] == outs[1] && outs[1] == outs[2] && outs[0] != base)
    }

    /// A bitsandbytes NF4 base (made by transformers): PEFT dequantizes each adapted weight to
    /// its quant state's dtype, adds the float32 delta and quantizes again; the rest is kept.
    @Test func nf4BaseLikePEFTOnABitsandbytesModel() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        var r = try TestSupport.ftq(["merge", Self.golden + "/qbase-nf4", Self.golden + "/qbase-lora", "-o", dir + "/m.safetensors", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.data(dir + "/m.safetensors") == Self.data(Self.golden + "/merged-qbase-nf4/model.safetensors"))
        // The error that requantizing adds is always reported, per merged weight.
        r = try TestSupport.ftq(["merge", Self.golden + "/qbase-nf4", Self.golden + "/qbase-lora", "-o", dir + "/j.safetensors", "--json", "-q"])
        let doc = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        let rep = try #require(doc["requantization_error"] as? [String: Any])
        let tensors = rep["tensors"] as! [[String: Any]]
        #expect(Set(tensors.map { $0["name"] as! String }) == ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.down_proj.weight"])
        #expect(tensors.allSatisfy { ($0["relative_frobenius"] as? Double ?? 0) > 0.01 && $0["type_a"] as? String == "F32" })
        // A directory base gives a directory with its config (quantization_config included).
        r = try TestSupport.ftq(["merge", Self.golden + "/qbase-nf4", Self.golden + "/qbase-lora", "-o", dir + "/d", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.data(dir + "/d/model.safetensors") == Self.data(Self.golden + "/merged-qbase-nf4/model.safetensors"))
        #expect(try Self.data(dir + "/d/config.json") == Self.data(Self.golden + "/qbase-nf4/config.json"))
        #expect(try TestSupport.ftq(["verify", dir + "/d"]).status == 0)
        // An adapter whose module is not a 4-bit weight of the base is refused.
        r = try TestSupport.ftq(["merge", Self.golden + "/qbase-nf4", Self.golden + "/llama-lora", "-o", dir + "/x.safetensors"])
        #expect(r.status == 3 && (r.stderr.contains("[merge.shape-mismatch]") || r.stderr.contains("[merge.missing-target]")), "\(r.stderr)")
    }

    /// An LLM.int8 base: PEFT adds the float32 delta to bitsandbytes' float32 dequantization and
    /// quantizes again (float16 first, then row-wise).
    /// modules_to_save (lm_head, which bitsandbytes keeps in bf16) with bitsandbytes bases:
    /// byte-identical to PEFT (tools/golden/make_peft_qbase_save.py); with --dequantize the
    /// copy is the adapter's values rounded to the base tensor's bf16; a copy of a quantized
    /// weight is refused.
    @Test(arguments: ["nf4", "int8"])
    func modulesToSaveIntoABitsandbytesBase(_ tag: String) throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let qsave = TestSupport.testdata("golden/peft-qsave")
        var r = try TestSupport.ftq(["merge", Self.golden + "/qbase-\(tag)", qsave + "/qbase-save-lora", "-o", dir + "/m.safetensors", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.data(dir + "/m.safetensors") == Self.data(qsave + "/merged-qbase-save-\(tag)/model.safetensors"))
        r = try TestSupport.ftq(["merge", Self.golden + "/qbase-\(tag)", qsave + "/qbase-save-lora", "-o", dir + "/d.safetensors", "--dequantize", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        func lmHead(_ path: String) throws -> [UInt8]? {
            let m = try SafetensorsFile.open(path)
            return try m.tensors.first { $0.name == "lm_head.weight" }.map { try m.read($0) }
        }
        let got = try lmHead(dir + "/d.safetensors"), want = try lmHead(qsave + "/merged-qbase-save-\(tag)/model.safetensors")
        #expect(got != nil && got == want)
        let a = dir + "/bad"
        let q = "base_model.model.model.layers.0.self_attn.q_proj"
        try Self.adapter(a, config: #"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "modules_to_save": ["q_proj"]}"#,
                         tensors: [("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight", [4, 128]),
                                   ("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight", [64, 4]), ("\(q).weight", [64, 64])])
        r = try TestSupport.ftq(["merge", Self.golden + "/qbase-\(tag)", a, "-o", dir + "/x.safetensors"])
        #expect(r.status == 3 && r.stderr.contains("q_proj.weight") && r.stderr.contains("quantized"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.safetensors"))
    }

    @Test func int8BaseLikePEFTOnABitsandbytesModel() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let r = try TestSupport.ftq(["merge", Self.golden + "/qbase-int8", Self.golden + "/qbase-lora", "-o", dir + "/m.safetensors", "--json", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.data(dir + "/m.safetensors") == Self.data(Self.golden + "/merged-qbase-int8/model.safetensors"))
        let doc = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        let rep = try #require(doc["requantization_error"] as? [String: Any])
        #expect((rep["tensors"] as! [[String: Any]]).map { $0["type_b"] as? String } == ["INT8", "INT8"])
    }

    /// --dequantize: the whole model in full precision; weights the adapter does not touch are
    /// exactly what `ftq dequantize` gives, merged ones lie where the requantized merge's
    /// reported error says they do.
    @Test func nf4BaseDequantized() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let base = Self.golden + "/qbase-nf4", lora = Self.golden + "/qbase-lora"
        var r = try TestSupport.ftq(["merge", base, lora, "-o", dir + "/full", "--dequantize", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        let config = String(decoding: try Self.data(dir + "/full/config.json"), as: UTF8.self)
        #expect(!config.contains("quantization_config"))
        r = try TestSupport.ftq(["dequantize", base, "-o", dir + "/plain", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.ftq(["compare", dir + "/plain", dir + "/full", "--json", "-q"])
        let cmp = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        for t in cmp["tensors"] as! [[String: Any]] {
            let merged = ["model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.down_proj.weight"].contains(t["name"] as! String)
            #expect((t["identical"] as? Bool) == !merged, "\(t["name"]!)")
        }
        r = try TestSupport.ftq(["merge", base, lora, "-o", dir + "/q.safetensors", "--json", "-q"])
        let rep = (try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any])["requantization_error"] as! [String: Any]
        r = try TestSupport.ftq(["compare", dir + "/full", dir + "/q.safetensors", "--json", "-q"])
        let c2 = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        let want = Dictionary(uniqueKeysWithValues: (rep["tensors"] as! [[String: Any]]).map { ($0["name"] as! String, $0["relative_frobenius"] as! Double) })
        for t in c2["tensors"] as! [[String: Any]] {
            guard let w = want[t["name"] as! String] else { continue }
            let got = t["relative_frobenius"] as! Double
            #expect(abs(got - w) < 0.02 * w, "\(t["name"]!): \(got) vs reported \(w)")
        }
        for bad in [["--dequantize", "--requantize"], ["--dtype", "f32"]] {
            #expect(try TestSupport.ftq(["merge", base, lora, "-o", dir + "/x.safetensors"] + bad).status == 2, "\(bad)")
        }
        #expect(try TestSupport.ftq(["merge", Self.source, Self.golden + "/llama-lora", "-o", dir + "/x.safetensors", "--dequantize"]).status == 2)
    }

    /// A GGUF base in llama.cpp's naming and q/k row order (written by gguf-py the way
    /// convert_hf_to_gguf writes a Llama): the merge equals PEFT's merge into the Hugging Face
    /// checkpoint, converted the same way (tools/interop/gguf_lora_peer.py).
    @Test(arguments: [("bf16", "llama-lora"), ("f32", "llama-rslora")])
    func ggufBaseLikePEFTInLlamaCppOrder(_ dtype: String, _ adapter: String) throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let peer = TestSupport.tool("interop/gguf_lora_peer.py")
        var hf = Self.source
        if dtype != "bf16" {
            hf = dir + "/hf"
            var r = try TestSupport.ftq(["convert", Self.source, "-o", hf, "--dtype", dtype, "-q"])
            #expect(r.status == 0, "\(r.stderr)")
            try FileManager.default.copyItem(atPath: Self.source + "/config.json", toPath: hf + "/config.json")
            r = try TestSupport.ftq(["verify", hf])
        }
        var r = try TestSupport.python(peer, ["make", hf, dir + "/base.gguf"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.ftq(["merge", dir + "/base.gguf", Self.golden + "/" + adapter, "-o", dir + "/m.gguf", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.python(peer, ["check", Self.golden + "/merged-\(adapter)-\(dtype)/model.safetensors", Self.source + "/config.json", dir + "/m.gguf"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(try TestSupport.ftq(["verify", dir + "/m.gguf"]).status == 0)
        #expect(try TestSupport.ftq(["merge", dir + "/base.gguf", Self.golden + "/" + adapter, "-o", dir + "/m.safetensors"]).status == 2)
    }

    /// A llama.cpp GGUF LoRA adapter (the PEFT adapter converted by convert_lora_to_gguf.py):
    /// merged into a GGUF base it gives the same bytes as the PEFT adapter itself.
    @Test func llamaCppGGUFAdapter() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        var r = try TestSupport.python(TestSupport.tool("interop/gguf_lora_peer.py"), ["make", Self.source, dir + "/b.gguf"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.ftq(["merge", dir + "/b.gguf", Self.golden + "/llama-lora.gguf", "-o", dir + "/g.gguf", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.ftq(["merge", dir + "/b.gguf", Self.golden + "/llama-lora", "-o", dir + "/p.gguf", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.data(dir + "/g.gguf") == Self.data(dir + "/p.gguf"))
        r = try TestSupport.ftq(["merge", Self.source, Self.golden + "/llama-lora.gguf", "-o", dir + "/x.safetensors"])
        #expect(r.status == 3 && r.stderr.contains("GGUF base"), "\(r.stderr)")
    }

    /// A quantized GGUF base: adapted tensors are decoded, merged and quantized again with their
    /// own type; the blocks equal gguf-py's quantization of the merged values that --dequantize
    /// writes, and the error requantizing adds is reported.
    @Test(arguments: ["Q8_0", "Q4_0"])
    func quantizedGGUFBase(_ type: String) throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let peer = TestSupport.tool("interop/gguf_lora_peer.py")
        var r = try TestSupport.python(peer, ["make", Self.golden + "/qbase-bf16", dir + "/b.gguf"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.ftq(["quantize", dir + "/b.gguf", "--type", type, "-o", dir + "/bq.gguf", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.ftq(["merge", dir + "/bq.gguf", Self.golden + "/qbase-lora", "-o", dir + "/m.gguf", "--json", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        let rep = try #require(doc["requantization_error"] as? [String: Any])
        #expect(Set((rep["tensors"] as! [[String: Any]]).map { $0["name"] as! String }) == ["blk.0.attn_q.weight", "blk.0.ffn_down.weight"])
        r = try TestSupport.ftq(["merge", dir + "/bq.gguf", Self.golden + "/qbase-lora", "-o", dir + "/full.gguf", "--dequantize", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.python(peer, ["requant-check", dir + "/full.gguf", dir + "/m.gguf"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    }

    /// --report on a full-precision base: the error of rounding the merge to the output dtype
    /// (none for f32).
    @Test func reportOnAFullPrecisionBase() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        var r = try TestSupport.ftq(["merge", Self.source, Self.golden + "/llama-lora", "-o", dir + "/m.safetensors", "--report", "--json", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        var doc = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        var tensors = (doc["rounding_error"] as! [String: Any])["tensors"] as! [[String: Any]]
        #expect(tensors.count == 6 && tensors.allSatisfy { $0["type_b"] as? String == "BF16" && ($0["relative_frobenius"] as! Double) < 0.01 })
        #expect(try Self.data(dir + "/m.safetensors") == Self.data(Self.golden + "/merged-llama-lora-bf16/model.safetensors"))
        r = try TestSupport.ftq(["merge", Self.source, Self.golden + "/llama-lora", "-o", dir + "/m32.safetensors", "--dtype", "f32", "--report", "--json", "-q"])
        doc = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        tensors = (doc["rounding_error"] as! [String: Any])["tensors"] as! [[String: Any]]
        #expect(tensors.count == 6 && tensors.allSatisfy { $0["identical"] as? Bool == true })
    }

    @Test func gpt2Conv1DWithFanInFanOut() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let r = try TestSupport.ftq(["merge", Self.golden + "/gpt2-base", Self.golden + "/gpt2-lora", "-o", dir + "/m.safetensors", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.data(dir + "/m.safetensors") == Self.data(Self.golden + "/merged-gpt2/model.safetensors"))
    }

    @Test func directoryBaseGivesADirectoryWithItsFilesAndAManifest() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        var r = try TestSupport.ftq(["merge", Self.source, Self.golden + "/llama-lora", "-o", dir + "/merged", "--json", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        #expect(doc["merged_modules"] as? Int == 6)
        #expect(try Self.data(dir + "/merged/model.safetensors") == Self.data(Self.golden + "/merged-llama-lora-bf16/model.safetensors"))
        #expect(try Self.data(dir + "/merged/config.json") == Self.data(Self.source + "/config.json"))
        let m = try JSONSerialization.jsonObject(with: Self.data(dir + "/merged/ftq-manifest.json")) as! [String: Any]
        let inputs = (m["inputs"] as! [[String: Any]]).map { $0["path"] as! String }
        #expect(inputs.contains { $0.hasSuffix("llama-lora/adapter_model.safetensors") } && inputs.contains { $0.hasSuffix("llama-lora/adapter_config.json") })
        r = try TestSupport.run("/usr/bin/env", ["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd: dir + "/merged")
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        // --dtype f32: the merged values rounded to f32 instead (here: the exact float32 sums).
        r = try TestSupport.ftq(["merge", Self.source, Self.golden + "/llama-lora", "-o", dir + "/m32.safetensors", "--dtype", "f32", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.ftq(["inspect", dir + "/m32.safetensors", "--json"])
        let t = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        #expect((t["tensors"] as! [[String: Any]]).allSatisfy { $0["dtype"] as? String == "F32" })
    }

    /// Writes an adapter directory: a config (JSON text) and LoRA tensors.
    static func adapter(_ dir: String, config: String, tensors: [(String, [Int])]) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try config.write(toFile: dir + "/adapter_config.json", atomically: false, encoding: .utf8)
        BnBQuantizeCLITests.safetensors(tensors.map { ($0.0, "F32", $0.1, [UInt8](repeating: 0, count: 4 * $0.1.reduce(1, *))) },
                                        to: dir + "/adapter_model.safetensors")
    }

    @Test func badAdaptersAreRefusedNamingTheProblem() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let q = "base_model.model.model.layers.0.self_attn.q_proj"
        let good = [("\(q).lora_A.weight", [4, 48]), ("\(q).lora_B.weight", [48, 4])]
        let cases: [(String, [(String, [Int])], String, String)] = [
            (#"{"peft_type": "IA3", "r": 4, "lora_alpha": 8}"#, good, "merge.adapter-config", "IA3"),
            (#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "use_dora": true}"#, good, "merge.adapter", "lora_magnitude_vector"),
            (#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8}"#, good + [("\(q).lora_magnitude_vector", [48])], "merge.adapter-config", "use_dora"),
            (#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "use_dora": true}"#, good + [("\(q).lora_magnitude_vector", [24])],
             "merge.adapter", "lora_magnitude_vector is [24]"),
            (#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "use_dora": true}"#,
             good + [("\(q).lora_magnitude_vector", [48]), ("base_model.model.model.layers.0.self_attn.k_proj.lora_magnitude_vector", [24])],
             "merge.adapter", "k_proj\" has a DoRA magnitude"),
            (#"{"peft_type": "LORA", "r": 8, "lora_alpha": 8}"#, good, "merge.adapter-config", "rank 4"),
            (#"{"peft_type": "LORA", "lora_alpha": 8}"#, good, "merge.adapter-config", "\"r\""),
            (#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8}"#, [("base_model.model.model.layers.9.mlp.up_proj.lora_A.weight", [4, 48]),
                                                                 ("base_model.model.model.layers.9.mlp.up_proj.lora_B.weight", [90, 4])],
             "merge.missing-target", "layers.9.mlp.up_proj"),
            (#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8}"#, [("\(q).lora_A.weight", [4, 40]), ("\(q).lora_B.weight", [48, 4])],
             "merge.shape-mismatch", "q_proj.weight"),
            (#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8}"#, [("\(q).lora_A.weight", [4, 48])], "merge.adapter", "lora_B"),
            (#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8"#, good, "json", "invalid JSON"),
            (#"{"peft_type": "LORA", "r": 1e9, "lora_alpha": 8}"#, good, "merge.adapter-config", "\"r\""),
            (#"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "rank_pattern": {"q_proj": 100000000}}"#, good, "merge.adapter-config", "rank_pattern"),
        ]
        for (k, (config, tensors, code, words)) in cases.enumerated() {
            let a = dir + "/a\(k)"
            try Self.adapter(a, config: config, tensors: tensors)
            let r = try TestSupport.ftq(["merge", Self.source, a, "-o", dir + "/out\(k).safetensors"])
            #expect(r.status == 3, "case \(k): \(r.stderr)")
            #expect(r.stderr.contains(code) && r.stderr.contains(words), "case \(k): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/out\(k).safetensors"))
        }
        let a = dir + "/ok"
        try Self.adapter(a, config: #"{"peft_type": "LORA", "r": 4, "lora_alpha": 8}"#, tensors: good)
        #expect(try TestSupport.ftq(["merge", Self.source, a, "-o", dir + "/x.gguf"]).status == 2)
        #expect(try TestSupport.ftq(["merge", Self.source, dir, "-o", dir + "/x.safetensors"]).status == 3)
        #expect(try TestSupport.ftq(["merge", Self.source, a, "-o", dir + "/x.safetensors", "-q"]).status == 0)
    }
}
