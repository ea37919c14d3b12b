import Testing
import FTQCore
import FTQFormats
import FTQKernels
import FTQPlan

/// The inference table: bits per weight derived from ftq's codecs, sizes tensor by tensor.
struct PlanInferenceTests {
    /// The bits per weight of every format ftq writes, pinned: each comes from the block sizes
    /// in FTQKernels, so a change there shows here.
    @Test func bitsPerWeight() {
        let expected: [(InferenceFormat, Double)] = [
            (.bf16, 16),
            (.ggml(.Q8_0), 34.0 / 32 * 8),       // 8.5
            (.ggml(.Q6_K), 210.0 / 256 * 8),     // 6.5625
            (.ggml(.Q5_1), 24.0 / 32 * 8),       // 6
            (.ggml(.Q5_0), 22.0 / 32 * 8),       // 5.5
            (.ggml(.Q4_1), 20.0 / 32 * 8),       // 5
            (.ggml(.Q4_K), 144.0 / 256 * 8),     // 4.5
            (.ggml(.Q4_0), 18.0 / 32 * 8),       // 4.5
            (.nf4, 4 + 8.0 / 64 + 32.0 / (64 * 256)),  // 4.126953125
        ]
        for (f, bits) in expected { #expect(f.bitsPerWeight() == bits, "\(f.name)") }
        #expect(InferenceFormat.int8.bitsPerWeight(columns: 4096) == 8 + 32.0 / 4096)
        #expect(InferenceFormat.allCases.count == 10)
    }

    /// ggml sizes agree with GGUF's own type table (FTQCore's GGMLType, from ggml.h), which the
    /// GGUF writer uses: rows x rowBytes, with llama-quantize's fallbacks.
    @Test func ggmlSizesMatchTypeTable() throws {
        let m = try PlanTestSupport.published("llama-2-7b")
        for q in GGMLQuantizeType.allCases {
            let f = InferenceFormat.ggml(q)
            for t in m.tensors {
                if t.shape.count == 1 { #expect(f.bytes(of: t) == t.elements * 4); continue }
                let type = GGMLType.named(q.rawValue)!
                #expect(f.bytes(of: t) == t.shape[0] * type.rowBytes(t.shape[1])!, "\(q) \(t.name)")
            }
        }
        // Rows of 288 (not a multiple of 256): Q4_K falls back to Q5_0, Q6_K to Q8_0.
        let odd = PlanTensor(name: "blk.0.ffn_down.weight", shape: [256, 288], role: .linear(.down), layer: 0)
        #expect(InferenceFormat.ggml(.Q4_K).bytes(of: odd) == 256 * 288 / 32 * 22)
        #expect(InferenceFormat.ggml(.Q6_K).bytes(of: odd) == 256 * 288 / 32 * 34)
        // Rows of 20 fill no block at all: kept as F16.
        let tiny = PlanTensor(name: "x.weight", shape: [4, 20], role: .linear(.up), layer: 0)
        #expect(InferenceFormat.ggml(.Q4_0).bytes(of: tiny) == 4 * 20 * 2)
    }

    /// NF4 and INT8 sizes agree with what BnBQuantizer writes for each weight, less the
    /// quant_state JSON (a few hundred bytes per tensor) that the plan leaves out.
    @Test func bnbSizesMatchQuantizer() throws {
        let dir = PlanTestSupport.testdata("golden/peft/qbase-bf16")
        let plan = try PlanModel.load(dir)
        let model = try ModelOpener.open(dir)
        for (mode, format) in [(BnBOptions.Mode.fourBit(.nf4), InferenceFormat.nf4), (.int8, .int8)] {
            let q = try BnBQuantizer(model: model, options: ConvertOptions(), bnb: BnBOptions(mode: mode))
            let plans = q.plan()
            for (k, t) in model.tensors.enumerated() {
                let p = try #require(plan.tensors.first { $0.name == t.name })
                let planned = format.bytes(of: p)
                if plans[k] == .quantize {
                    #expect(p.linearKind != nil, "\(t.name)")
                    let written = q.quantizedBytes(t)
                    #expect(written >= planned && written - planned < 300, "\(format.name) \(t.name): \(planned) vs \(written)")
                } else {
                    #expect(planned == t.nbytes, "\(t.name)")
                }
            }
        }
    }

    /// KV cache: Llama 2 7B at its 4096-token context needs 2 GiB in 16 bits (the figure
    /// usually quoted); grouped-query attention divides it by the group size.
    @Test func kvCache() throws {
        let llama2 = InferenceEstimate(try PlanTestSupport.published("llama-2-7b"), context: 4096)
        #expect(llama2.kvCacheBytes == 2 << 30)
        let mistral = InferenceEstimate(try PlanTestSupport.published("mistral-7b"), context: 4096)
        #expect(mistral.kvCacheBytes == (2 << 30) / 4)
        // T5: the decoder's self- and cross-attention keys and values.
        let t5 = InferenceEstimate(try PlanTestSupport.published("t5-small"), context: 512)
        #expect(t5.kvCacheBytes == 2 * 6 * 512 * 1024 * 2)
    }

    /// Edge devices: a 7B model fits an 8 GiB device in Q4_K but not a 4 GiB one; GPT-2 fits
    /// 4 GiB in every format.
    @Test func deviceFits() throws {
        let mistral = InferenceEstimate(try PlanTestSupport.published("mistral-7b"), context: 2048)
        let q4k = try #require(mistral.rows.first { $0.format == .ggml(.Q4_K) })
        #expect(q4k.totalBytes > 4 << 30 && q4k.totalBytes < 8 << 30)
        let bf16 = try #require(mistral.rows.first { $0.format == .bf16 })
        #expect(bf16.totalBytes > 8 << 30)
        // Q4_K at 4.5 bits: 7.24e9 x 4.5 / 8 = 4.07 GB of weights.
        #expect(abs(Double(q4k.weightBytes) - 7_241_732_096 * 4.5 / 8) < 2e6)
        let gpt2 = InferenceEstimate(try PlanTestSupport.published("gpt2"), context: 1024)
        #expect(gpt2.rows.allSatisfy { $0.totalBytes < 4 << 30 })
    }
}
