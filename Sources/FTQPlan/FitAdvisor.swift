/// One change to the settings and what it gives.
public struct PlanChange: Sendable {
    /// The change, in words (`enable gradient checkpointing`).
    public var change: String
    /// The settings with the change applied.
    public var settings: PlanSettings
    public var estimate: TrainingEstimate
    /// Whether the new estimate fits the GPU (paged state may spill to CPU memory).
    public var fits: Bool
}

/// The cheapest changes that make a plan fit a GPU (formats/plan.md, "Making it fit").
public enum FitAdvisor {
    /// Whether an estimate fits `gpuBytes`: its resident bytes (paged optimizer state may move
    /// to CPU memory) are at most the GPU's.
    public static func fits(_ e: TrainingEstimate, gpuBytes: Int) -> Bool { e.resident <= Double(gpuBytes) }

    /// The single changes, cheapest first, each with its new estimate: FlashAttention,
    /// gradient checkpointing, an 8-bit optimizer, LoRA instead of full fine-tuning, QLoRA
    /// instead of LoRA, a smaller batch (halved until it fits), ZeRO over more GPUs. When no
    /// single change fits, the last entry combines them in that order until the plan fits.
    public static func changes(_ model: PlanModel, _ s: PlanSettings, gpuBytes: Int) -> [PlanChange] {
        var out: [PlanChange] = []
        func make(_ text: String, _ t: PlanSettings) -> PlanChange {
            let e = TrainingEstimator.estimate(model, t)
            return PlanChange(change: text, settings: t, estimate: e, fits: fits(e, gpuBytes: gpuBytes))
        }
        var steps: [(String, (inout PlanSettings) -> Void)] = []
        if !s.flashAttention { steps.append(("enable FlashAttention", { $0.flashAttention = true })) }
        if !s.gradientCheckpointing { steps.append(("enable gradient checkpointing", { $0.gradientCheckpointing = true })) }
        if s.optimizer == .adamw || s.optimizer == .pagedAdamw {
            steps.append(("8-bit AdamW (paged) instead of AdamW", { $0.optimizer = .pagedAdamw8bit }))
        }
        if s.method == .full { steps.append(("LoRA (rank \(s.loraRank), \(s.loraTargetsText)) instead of full fine-tuning", { $0.method = .lora })) }
        if s.method != .qlora { steps.append(("QLoRA instead of \(s.method == .full ? "full fine-tuning" : "LoRA")", { $0.method = .qlora })) }
        for (text, apply) in steps {
            var t = s
            apply(&t)
            out.append(make(text, t))
        }
        // A smaller micro-batch, with gradient accumulation keeping the effective batch.
        if s.batch > 1 {
            var t = s
            var change = make("", t)
            repeat {
                t.batch = max(1, t.batch / 2)
                change = make("batch \(t.batch) with gradient accumulation × \((s.batch + t.batch - 1) / t.batch)", t)
            } while !change.fits && t.batch > 1
            out.append(change)
        }
        // ZeRO: the fewest GPUs, then the lowest stage, that fit.
        if s.zeroStage < 3 {
            var found: PlanChange?
            search: for k in [2, 4, 8, 16, 32, 64] where k >= s.gpus {
                for stage in max(1, s.zeroStage)...3 {
                    var t = s
                    t.zeroStage = stage
                    t.gpus = k
                    let c = make("ZeRO stage \(stage) on \(k) GPUs", t)
                    if c.fits { found = c; break search }
                }
            }
            if let found { out.append(found) }
        }
        if !out.contains(where: \.fits) {
            var t = s
            var applied: [String] = []
            for (text, apply) in steps {
                apply(&t)
                applied.append(text)
                let c = make(applied.joined(separator: ", "), t)
                if c.fits || applied.count == steps.count {
                    if applied.count > 1 { out.append(c) }
                    break
                }
            }
        }
        return out
    }
}
