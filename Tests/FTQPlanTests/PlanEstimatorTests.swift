import Testing
import FTQPlan

/// The estimator's arithmetic, line by line (formats/plan.md, "Training").
struct PlanEstimatorTests {
    func settings(_ body: (inout PlanSettings) -> Void) -> PlanSettings {
        var s = PlanSettings()
        body(&s)
        return s
    }

    /// GPT-2 has GPT-3's shapes (MLP 4h, dropout, multi-head attention): the per-block
    /// coefficient is Korthikanti et al.'s 34, and with scores s·b·h·(34 + 5·a·s/h).
    @Test func korthikantiCoefficient() throws {
        let m = try PlanTestSupport.published("gpt2")
        let s = settings { $0.batch = 4; $0.sequence = 1024 }
        let e = TrainingEstimator.estimate(m, s)
        let (sq, b, h, a, L) = (1024.0, 4.0, 768.0, 12.0, 12.0)
        #expect(e.bytes("activations") == L * sq * b * h * (34 + 5 * a * sq / h))
        #expect(e.bytes("logits") == b * sq * 50257 * 12)
        // FlashAttention removes the score term.
        let flash = TrainingEstimator.estimate(m, settings { $0.batch = 4; $0.sequence = 1024; $0.flashAttention = true })
        #expect(flash.bytes("activations") == L * sq * b * h * 34)
    }

    /// 16 bytes per parameter for mixed-precision AdamW: 2 (weights) + 2 (gradients) + 4
    /// (master) + 8 (moments). pure-bf16 AdamW is 8; fp32 AdamW 16 with no master.
    @Test func bytesPerParameter() throws {
        let m = try PlanTestSupport.published("llama-2-7b")
        let P = Double(m.parameterCount)
        func perParam(_ s: PlanSettings) -> Double {
            let e = TrainingEstimator.estimate(m, s)
            return (e.bytes("weights") + e.bytes("gradients") + e.bytes("optimizer_states")) / P
        }
        #expect(perParam(settings { _ in }) == 16)
        #expect(perParam(settings { $0.precision = .fp16 }) == 16)
        #expect(perParam(settings { $0.precision = .fp32 }) == 16)
        #expect(perParam(settings { $0.precision = .pureBF16 }) == 8)
        #expect(perParam(settings { $0.precision = .pureBF16; $0.optimizer = .sgd }) == 6)
        // 8-bit AdamW: 2 B of moments (+ a float32 absmax per 256 of each) + 4 B master.
        let eight = perParam(settings { $0.optimizer = .adamw8bit })
        #expect(eight > 10 && eight < 10.04)
        // Adafactor's factored state is far below one byte per parameter.
        let ada = perParam(settings { $0.optimizer = .adafactor; $0.precision = .pureBF16 })
        #expect(ada > 4 && ada < 4.01)
    }

    /// ZeRO shards: stage 1 the optimizer states, 2 also gradients, 3 also weights.
    @Test func zeroStages() throws {
        let m = try PlanTestSupport.published("llama-3.1-8b")
        let base = TrainingEstimator.estimate(m, settings { _ in })
        for stage in 1...3 {
            let e = TrainingEstimator.estimate(m, settings { $0.zeroStage = stage; $0.gpus = 8 })
            #expect(e.bytes("optimizer_states") == base.bytes("optimizer_states") / 8)
            #expect(e.bytes("gradients") == (stage >= 2 ? base.bytes("gradients") / 8 : base.bytes("gradients")))
            #expect(e.bytes("weights") == (stage >= 3 ? base.bytes("weights") / 8 : base.bytes("weights")))
            #expect(e.bytes("activations") == base.bytes("activations"))
            #expect((e.bytes("zero3_gather") > 0) == (stage == 3))
        }
    }

    /// Gradient checkpointing keeps each block's input plus one recomputed block, and the
    /// recomputed block is never alive with the logits.
    @Test func checkpointing() throws {
        let m = try PlanTestSupport.published("llama-3.1-8b")
        let e = TrainingEstimator.estimate(m, settings { $0.batch = 2; $0.gradientCheckpointing = true; $0.flashAttention = true })
        let tokens = 2.0 * 2048
        let stored = 32 * 2 * tokens * 4096
        // Llama 3.1 8B: attention 2h + 2h + 4(h/4) + 2h = 7h, SwiGLU 2h + 8·3.5h = 30h, norms 4h: 41h.
        let block = tokens * 4096 * 41
        #expect(e.bytes("activations") == stored + block)
        #expect(e.overlap == min(block, e.bytes("logits")))
        let sum = e.lines.reduce(0) { $0 + $1.bytes }
        #expect(e.total == sum - e.overlap)
        #expect(e.low < e.total && e.total < e.high)
    }

    /// The loss decides the bytes per logit alive at its peak: 12 unfused (the default,
    /// transformers' Trainer), 2 chunked (torchtune); the range spans what each cannot know.
    @Test func lossComputation() throws {
        let m = try PlanTestSupport.published("llama-3.1-8b")
        let logits = 2.0 * 2048 * 128_256
        let unfused = TrainingEstimator.estimate(m, settings { $0.batch = 2; $0.flashAttention = true })
        #expect(PlanSettings().loss == .unfused)
        #expect(unfused.bytes("logits") == logits * 12)
        #expect(unfused.lines.first { $0.key == "logits" }?.formula.contains("× 12 B (unfused loss") == true)
        let chunked = TrainingEstimator.estimate(m, settings { $0.batch = 2; $0.flashAttention = true; $0.loss = .chunked })
        #expect(chunked.bytes("logits") == logits * 2)
        #expect(unfused.total - chunked.total == logits * 10)
        // Range: unfused 10-12 B per logit, chunked 2-6 B; the assumptions say so.
        #expect(unfused.total - unfused.low > chunked.total - chunked.low)
        #expect(chunked.high - chunked.total > 4 * logits)
        #expect(chunked.assumptions.contains { $0.contains("chunked loss") && $0.contains("6 B") })
        #expect(unfused.assumptions.contains { $0.contains("unfused loss") && $0.contains("10 B") })
    }

    /// LoRA and QLoRA: frozen weights, adapters and their optimizer state.
    @Test func loraAndQLoRA() throws {
        let m = try PlanTestSupport.published("llama-2-7b")
        let lora = TrainingEstimator.estimate(m, settings { $0.method = .lora })
        // all-linear r = 8: q, k, v, o 8·(4096+4096) each, gate, up, down 8·(4096+11008) each, 32 layers.
        let Pt = 32 * (4 * 8 * 8192 + 3 * 8 * 15104)
        #expect(lora.trainableParameters == Pt)
        #expect(lora.bytes("weights") == Double(m.parameterCount * 2))
        #expect(lora.bytes("trainable_parameters") == Double(Pt * 2))
        #expect(lora.bytes("optimizer_states") == Double(Pt * 12))
        let qlora = TrainingEstimator.estimate(m, settings { $0.method = .qlora })
        // Projections at 4.127 bits, embeddings, head and norms at 16.
        let linear = m.tensors.filter { $0.linearKind != nil }.reduce(0) { $0 + $1.elements }
        let expected = Double(linear) * InferenceFormat.nf4.bitsPerWeight() / 8 + Double((m.parameterCount - linear) * 2)
        #expect(abs(qlora.bytes("weights") - expected) / expected < 1e-3)
        #expect(qlora.trainableParameters == Pt)
    }

    /// Paged optimizers: their state counts in the total but may spill, so a plan fits when the
    /// rest does. Optimizer in backward keeps one gradient at a time.
    @Test func pagedAndOptimizerInBackward() throws {
        let m = try PlanTestSupport.published("llama-3.1-8b")
        let e = TrainingEstimator.estimate(m, settings { $0.precision = .pureBF16; $0.optimizer = .pagedAdamw8bit; $0.optimizerInBackward = true })
        #expect(e.pageable > 0 && e.pageable == e.bytes("optimizer_states"))
        #expect(e.resident == e.total - e.pageable)
        // The largest tensor is the embedding (or the head): 128256 x 4096 x 2 B.
        #expect(e.bytes("gradients") == 128_256 * 4096 * 2)
        #expect(FitAdvisor.fits(e, gpuBytes: Int(e.resident) + 1))
        #expect(!FitAdvisor.fits(e, gpuBytes: Int(e.resident) - 1))
    }

    /// The advice: each change re-estimated; those that fit are marked; cheapest first.
    @Test func fitAdvice() throws {
        let m = try PlanTestSupport.published("llama-3.1-8b")
        // A chunked loss: an unfused one's 12 B per logit at batch 8 (25 GB with a 128k
        // vocabulary) would leave no single change that fits.
        let s = settings { $0.method = .lora; $0.batch = 8; $0.loss = .chunked }
        let gpu = 40_000_000_000
        let base = TrainingEstimator.estimate(m, s)
        #expect(!FitAdvisor.fits(base, gpuBytes: gpu))
        let changes = FitAdvisor.changes(m, s, gpuBytes: gpu)
        let names = changes.map(\.change)
        #expect(names.first == "enable FlashAttention")
        #expect(names.contains("enable gradient checkpointing"))
        #expect(names.contains("QLoRA instead of LoRA"))
        #expect(names.contains { $0.hasPrefix("batch ") })
        for c in changes {
            #expect(c.estimate.total == TrainingEstimator.estimate(m, c.settings).total)
            #expect(c.fits == FitAdvisor.fits(c.estimate, gpuBytes: gpu))
        }
        let ckpt = try #require(changes.first { $0.change == "enable gradient checkpointing" })
        #expect(ckpt.fits && ckpt.estimate.total < base.total)

        // Full fine-tuning that activations do not dominate: sharding over GPUs helps.
        let full = settings { $0.gradientCheckpointing = true; $0.flashAttention = true }
        let fullChanges = FitAdvisor.changes(m, full, gpuBytes: gpu)
        let zero = try #require(fullChanges.first { $0.change.hasPrefix("ZeRO stage ") })
        #expect(zero.fits && zero.settings.gpus > 1)
        // The fewest GPUs at the lowest stage: one GPU fewer, or one stage lower, does not fit.
        if zero.settings.zeroStage > 1 {
            var lower = zero.settings
            lower.zeroStage -= 1
            #expect(!FitAdvisor.fits(TrainingEstimator.estimate(m, lower), gpuBytes: gpu))
        }
        #expect(fullChanges.contains { $0.change.hasPrefix("LoRA") && $0.fits })
    }

    /// T5: encoder and decoder blocks; the decoder's have cross-attention.
    @Test func encoderDecoder() throws {
        let m = try PlanTestSupport.published("t5-small")
        let e = TrainingEstimator.estimate(m, settings { $0.sequence = 512; $0.batch = 8; $0.flashAttention = true })
        let (sq, b, h) = (512.0, 8.0, 512.0)
        // Encoder block: attention 2h+2h+4h+2h+h = 11h, MLP (ReLU, 2048 = 4h) 2h+16h+h = 19h, norms 4h.
        // Decoder block: two attentions 22h, MLP 19h, three norms 6h.
        #expect(e.bytes("activations") == 6 * sq * b * h * 34 + 6 * sq * b * h * 47)
        #expect(e.bytes("logits") == b * sq * 32128 * 12)
    }
}
