import Foundation
import Testing
import FTQCore

/// `ftq plan` end to end: the built binary on the published configs and on real files.
struct PlanCommandTests {
    func json(_ r: TestSupport.Result) throws -> JSONValue { try StrictJSON.parse(Array(r.stdoutData)) }

    func int(_ v: JSONValue?) -> Int? { v?.nonNegativeInteger.map(Int.init) }

    @Test func jsonFields() throws {
        let r = try TestSupport.ftq(["plan", TestSupport.testdata("plan/llama-3.1-8b.json"), "--method", "qlora", "--batch", "2",
                                     "--gradient-checkpointing", "--flash-attention", "--gpu", "24GB", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try json(r)
        let total = try #require(int(j["total_bytes"]))
        let low = try #require(int(j["total_bytes_low"]))
        let high = try #require(int(j["total_bytes_high"]))
        #expect(low < total && total < high)
        guard case let .object(breakdown)? = j["breakdown"] else { Issue.record("no breakdown"); return }
        let keys = breakdown.map(\.0)
        #expect(keys == ["weights", "trainable_parameters", "gradients", "optimizer_states", "activations", "logits", "framework_overhead"])
        let sum = breakdown.reduce(0) { $0 + (int($1.1) ?? 0) }
        let overlap = try #require(int(j["overlap_bytes"]))
        #expect(abs(sum - overlap - total) <= keys.count)  // each line rounded to a byte
        guard case let .object(formulas)? = j["formulas"] else { Issue.record("no formulas"); return }
        #expect(formulas.map(\.0) == keys)
        #expect(int(j["parameters"]?["total"]) == 8_030_261_248)
        #expect(j["architecture"]?["source"] == .string("config.json"))
        #expect(j["gpu"]?["fits"] == .bool(true))
        #expect(j["settings"]?["method"] == .string("qlora"))
        guard case let .array(formats)? = j["inference"]?["formats"] else { Issue.record("no inference"); return }
        #expect(formats.compactMap { if case let .string(s)? = $0["format"] { return s } else { return nil } }
                == ["BF16", "Q8_0", "INT8", "Q6_K", "Q5_1", "Q5_0", "Q4_1", "Q4_K", "Q4_0", "NF4"])
        #expect(formats.allSatisfy { $0["fits_4gib"] != nil && $0["fits_8gib"] != nil })
        #expect(int(j["inference"]?["kv_cache_bytes"]) == 2 * 32 * 1024 * 2048 * 2)
    }

    @Test func textOutput() throws {
        let r = try TestSupport.ftq(["plan", TestSupport.testdata("plan/mistral-7b.json"), "--method", "lora", "--batch", "8", "--gpu", "24GB"])
        #expect(r.status == 0, "\(r.stderr)")
        for needle in ["weights", "trainable parameters", "gradients", "optimizer states", "activations", "logits",
                       "framework overhead", "total", "range", "Assumptions:", "does not fit", "enable gradient checkpointing",
                       "QLoRA instead of LoRA", "Q4_K", "NF4", "4 GiB", "8 GiB", "7,241,732,096"] {
            #expect(r.stdout.contains(needle), "missing \(needle)")
        }
    }

    /// A directory with config.json and weights, a GGUF file, a lone safetensors file.
    @Test func modelForms() throws {
        let dir = try TestSupport.ftq(["plan", TestSupport.testdata("golden/peft/qbase-bf16"), "--json"])
        #expect(dir.status == 0 && dir.stderr.isEmpty, "\(dir.stderr)")
        let j = try json(dir)
        #expect(j["parameters"]?["header_by_dtype"]?["BF16"] == j["parameters"]?["total"])

        let gguf = try TestSupport.ftq(["plan", TestSupport.testdata("llamacpp/tiny-llama-Q4_K_M.gguf"), "--method", "lora"])
        #expect(gguf.status == 0)
        #expect(gguf.stderr.contains("ftq: warning: no config.json"))
        #expect(gguf.stdout.contains("869,632"))

        let tmp = try TestSupport.tempDir()
        defer { TestSupport.cleanup(tmp) }
        try FileManager.default.copyItem(atPath: TestSupport.testdata("golden/peft/gpt2-base/model.safetensors"), toPath: tmp + "/gpt2.safetensors")
        let lone = try TestSupport.ftq(["plan", tmp + "/gpt2.safetensors", "--json"])
        #expect(lone.status == 0)
        #expect(lone.stderr.contains("inferred from tensor names"))
        let withConfig = try json(TestSupport.ftq(["plan", TestSupport.testdata("golden/peft/gpt2-base"), "--json"]))
        #expect(try json(lone)["parameters"]?["total"] == withConfig["parameters"]?["total"])
    }

    /// The inference table is what `ftq quantize` writes: quantize a small model for real and
    /// compare the tensor bytes with the plan's weights for that format.
    @Test func inferenceSizesMatchQuantize() throws {
        let tmp = try TestSupport.tempDir()
        defer { TestSupport.cleanup(tmp) }
        let made = try TestSupport.python(TestSupport.tool("make_tiny_model.py"), [tmp + "/m", "--layers", "2", "--hidden", "256", "--vocab", "512"])
        try #require(made.status == 0, "\(made.stderr)")
        let plan = try json(TestSupport.ftq(["plan", tmp + "/m", "--json"]))
        guard case let .array(rows)? = plan["inference"]?["formats"] else { Issue.record("no inference"); return }
        func planned(_ name: String) -> Int? { int(rows.first { $0["format"] == .string(name) }?["weights_bytes"]) }
        for type in ["Q8_0", "Q6_K", "Q5_1", "Q5_0", "Q4_1", "Q4_K", "Q4_0"] {
            let out = tmp + "/m-\(type).gguf"
            let q = try TestSupport.ftq(["quantize", tmp + "/m", "--type", type, "-o", out, "-q"])
            try #require(q.status == 0, "\(q.stderr)")
            let written = try json(TestSupport.ftq(["inspect", out, "--json"]))
            #expect(int(written["total_bytes"]) == planned(type), "\(type)")
        }
        // bitsandbytes: the plan leaves out each weight's quant_state JSON (< 300 bytes).
        for (flag, name) in [("--nf4", "NF4"), ("--int8", "INT8")] {
            let out = tmp + "/m-\(name)"
            let q = try TestSupport.ftq(["quantize", tmp + "/m", flag, "-o", out, "-q"])
            try #require(q.status == 0, "\(q.stderr)")
            let written = try #require(int(try json(TestSupport.ftq(["inspect", out, "--json"]))["total_bytes"]))
            let p = try #require(planned(name))
            #expect(written >= p && written - p < 14 * 300, "\(name): planned \(p), written \(written)")
        }
    }

    @Test func invalidConfigExits3() throws {
        let tmp = try TestSupport.tempDir()
        defer { TestSupport.cleanup(tmp) }
        let path = tmp + "/config.json"
        try #"{"model_type": "llama", "num_hidden_layers": 32, "num_attention_heads": 32}"#.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try TestSupport.ftq(["plan", path])
        #expect(r.status == 3)
        #expect(r.stderr.contains("\"hidden_size\" is missing") && r.stderr.contains("[plan.config]") && r.stderr.contains(path))
        try #"{"model_type": "llama", "model_type": "gpt2"}"#.write(toFile: path, atomically: true, encoding: .utf8)
        let dup = try TestSupport.ftq(["plan", path])
        #expect(dup.status == 3 && dup.stderr.contains("json.duplicate-key"))
        // Found by fuzzing (tools/fuzz, plan-config): sizes whose products overflow 64 bits
        // were a trap; now a refusal. And a KV cache per token beyond any real model's.
        let overflow = try TestSupport.ftq(["plan", TestSupport.testdata("plan/malformed/plan_config_overflow.json")])
        #expect(overflow.status == 3 && overflow.stderr.contains("[plan.config]") && overflow.stderr.contains("2^50"), "\(overflow.stderr)")
        try #"{"model_type": "llama", "hidden_size": 64, "intermediate_size": 64, "num_hidden_layers": 1099511627776, "num_attention_heads": 1, "vocab_size": 2}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        let deep = try TestSupport.ftq(["plan", path])
        #expect(deep.status == 3 && deep.stderr.contains("[plan.config]"), "\(deep.stderr)")
        #expect(try TestSupport.ftq(["plan", TestSupport.testdata("plan/gpt2.json"), "--seq", "2000000000"]).status == 2)
    }

    @Test func usageErrorsExit2() throws {
        let cfg = TestSupport.testdata("plan/llama-2-7b.json")
        for (args, code) in [(["--method", "dora"], "usage.method"), (["--optimizer", "lion"], "usage.optimizer"),
                             (["--precision", "fp8"], "usage.precision"), (["--method", "lora", "--lora-targets", "q,x"], "usage.lora-targets"),
                             (["--zero", "3"], "usage.gpus"), (["--gpu", "lots"], "usage.size"),
                             (["--lora-rank", "16"], "usage.conflict"), (["--batch", "0"], "usage.batch"),
                             (["--loss", "fused"], "usage.loss")] {
            let r = try TestSupport.ftq(["plan", cfg] + args)
            #expect(r.status == 2, "\(args)")
            #expect(r.stderr.contains("[\(code)]"), "\(args): \(r.stderr)")
        }
        // The options are checked before the model is read: a missing model with a bad
        // method is still a usage error.
        #expect(try TestSupport.ftq(["plan", "/nonexistent/config.json", "--method", "dora"]).status == 2)
        #expect(try TestSupport.ftq(["plan", "/nonexistent/config.json"]).status == 4)
    }

    /// --loss: unfused by default (transformers' Trainer), 12 B per logit; chunked 2 B.
    @Test func lossOption() throws {
        let cfg = TestSupport.testdata("plan/llama-3.1-8b.json")
        let common = ["plan", cfg, "--batch", "2", "--flash-attention", "--json"]
        let d = try TestSupport.ftq(common)
        #expect(d.status == 0, "\(d.stderr)")
        let unfused = try TestSupport.ftq(common + ["--loss", "unfused"])
        let chunked = try TestSupport.ftq(common + ["--loss", "chunked"])
        #expect(unfused.status == 0 && chunked.status == 0)
        let (jd, ju, jc) = (try json(d), try json(unfused), try json(chunked))
        #expect(jd["settings"]?["loss"] == .string("unfused"))
        #expect(jc["settings"]?["loss"] == .string("chunked"))
        #expect(int(jd["total_bytes"]) == int(ju["total_bytes"]))
        let logits = 2 * 2048 * 128_256
        #expect(int(ju["breakdown"]?["logits"]) == logits * 12)
        #expect(int(jc["breakdown"]?["logits"]) == logits * 2)
        guard case let .string(f)? = jc["formulas"]?["logits"] else { Issue.record("no formula"); return }
        #expect(f.contains("chunked loss") && f.contains("× 2 B"))
        let text = try TestSupport.ftq(["plan", cfg, "--loss", "chunked"])
        #expect(text.status == 0 && text.stdout.contains("chunked loss"))
        let bad = try TestSupport.ftq(["plan", cfg, "--loss", "liger"])
        #expect(bad.status == 2 && bad.stderr.contains("[usage.loss]") && bad.stderr.contains("chunked or unfused"))
        let help = try TestSupport.ftq(["plan", "--help"])
        #expect(help.stdout.contains("--loss"))
    }

    @Test func sequenceLongerThanModelWarns() throws {
        let r = try TestSupport.ftq(["plan", TestSupport.testdata("plan/gpt2.json"), "--seq", "4096", "--json"])
        #expect(r.status == 0)
        #expect(r.stderr.contains("ftq: warning: --seq 4096 is longer than the model's maximum of 1024"))
        let j = try json(r)
        #expect(int(j["settings"]?["seq"]) == 4096)
        guard case let .array(w)? = j["warnings"] else { Issue.record("no warnings"); return }
        #expect(w.count == 1)
        // Without --seq the plan takes the model's maximum when it is under 2048.
        let d = try json(TestSupport.ftq(["plan", TestSupport.testdata("plan/gpt2.json"), "--json"]))
        #expect(int(d["settings"]?["seq"]) == 1024)
    }

    @Test func encoderDecoder() throws {
        let r = try TestSupport.ftq(["plan", TestSupport.testdata("plan/flan-t5-base.json"), "--method", "lora", "--seq", "512"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("12 encoder + 12 decoder layers") && r.stdout.contains("247,577,856"))
    }
}
