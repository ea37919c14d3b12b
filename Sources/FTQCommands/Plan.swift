import ArgumentParser
import FTQCore
import FTQFormats
import FTQPlan

/// `ftq plan`: the GPU memory fine-tuning a model needs, and what running it needs
/// (formats/plan.md).
struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Estimate the GPU memory to fine-tune a model (full, LoRA, QLoRA) and to run it quantized.",
        discussion: """
        MODEL is a config.json, a Hugging Face directory (with or without weights), a \
        .safetensors file (with its config.json beside it, if any) or a GGUF file. Only the \
        config and the headers are read: plan a model before downloading it.

        Prints the peak memory per GPU of one training step, line by line with the formula \
        behind each (weights, trainable parameters, gradients, optimizer states, activations, \
        logits, framework overhead), the total with a low-high range and the assumptions that \
        span it, whether it fits --gpu and, if it does not, the cheapest changes that would \
        make it fit. Then, for running the model: weights-only size for each format ftq writes \
        and the KV cache of a --seq context, against 4 GiB and 8 GiB devices.

        --precision bf16 and fp16 are mixed precision (16-bit weights and gradients, an fp32 \
        master copy); pure-bf16 keeps everything in bfloat16. --zero N shards over --gpus K \
        (stage 1: optimizer states, 2: and gradients, 3: and weights, as FSDP does). Sizes are \
        decimal (24GB = 24*10^9 bytes); write 24GiB for a card's exact capacity.

        --loss unfused (the default) is the loss of transformers' Trainer, TRL and PEFT \
        scripts: the whole logits upcast to fp32, 12 bytes per logit alive at the loss's peak. \
        --loss chunked is torchtune's chunked cross-entropy (or Liger's fused one): the 16-bit \
        logits only, 2 bytes per logit. For a large vocabulary this is gigabytes.

        --json prints {"model", "architecture", "parameters", "settings", "total_bytes", \
        "total_bytes_low", "total_bytes_high", "pageable_bytes", "breakdown": {NAME: bytes}, \
        "formulas", "overlap_bytes", "assumptions", "warnings", "gpu", "changes", "inference"} \
        (formats/plan.md).
        """
    )

    @Argument(help: "config.json, Hugging Face directory, .safetensors or .gguf.")
    var model: String

    @Option(help: "full, lora or qlora.")
    var method: String = "full"

    @Option(help: "adamw, adamw-8bit, paged-adamw-8bit, paged-adamw, sgd or adafactor.")
    var optimizer: String = "adamw"

    @Option(help: "fp32, fp16, bf16 (mixed precision) or pure-bf16.")
    var precision: String = "bf16"

    @Option(help: "Micro-batch per GPU.")
    var batch: Int = 1

    @Option(help: "Tokens per sequence (default: 2048, or the model's maximum if shorter).")
    var seq: Int?

    @Option(help: "LoRA rank (default 8).")
    var loraRank: Int?

    @Option(help: "Projections LoRA adapts: a list of q,k,v,o,gate,up,down, or all-linear (default).")
    var loraTargets: String?

    @Flag(help: "Recompute activations in the backward pass.")
    var gradientCheckpointing = false

    @Flag(help: "An attention kernel that stores no s x s scores.")
    var flashAttention = false

    @Flag(help: "Step each parameter as soon as its gradient is ready (torchtune's optimizer_in_bwd).")
    var optimizerInBackward = false

    @Option(help: "How the loss is computed: unfused (transformers, TRL, PEFT scripts; default) or chunked (torchtune, Liger).")
    var loss: String = "unfused"

    @Option(help: "DeepSpeed ZeRO stage 0-3 (3 = FSDP full sharding), with --gpus.")
    var zero: Int = 0

    @Option(help: "GPUs the ZeRO shards are spread over.")
    var gpus: Int?

    @Option(help: "GPU memory to check the plan against, e.g. 24GB or 80GiB.")
    var gpu: String?

    @Flag(help: "Print JSON for scripts.")
    var json = false

    /// The settings the options describe; every problem is a usage error (exit 2).
    func settings() throws -> PlanSettings {
        var s = PlanSettings()
        guard let m = PlanSettings.Method(rawValue: method) else {
            throw FTQError.usage("usage.method", "--method must be full, lora or qlora (got \"\(method)\")")
        }
        s.method = m
        guard let o = PlanSettings.Optimizer(rawValue: optimizer) else {
            throw FTQError.usage("usage.optimizer", "--optimizer must be one of \(PlanSettings.Optimizer.allCases.map(\.rawValue).joined(separator: ", ")) (got \"\(optimizer)\")")
        }
        s.optimizer = o
        guard let p = PlanSettings.Precision(rawValue: precision) else {
            throw FTQError.usage("usage.precision", "--precision must be fp32, fp16, bf16 or pure-bf16 (got \"\(precision)\")")
        }
        s.precision = p
        guard batch >= 1 else { throw FTQError.usage("usage.batch", "--batch must be 1 or more") }
        s.batch = batch
        if let seq, seq < 1 || seq > 1 << 30 { throw FTQError.usage("usage.seq", "--seq must be from 1 to 2^30") }
        if m == .full, loraRank != nil || loraTargets != nil {
            throw FTQError.usage("usage.conflict", "--lora-rank and --lora-targets apply to --method lora and qlora")
        }
        if let loraRank {
            guard loraRank >= 1 && loraRank <= 65536 else { throw FTQError.usage("usage.lora-rank", "--lora-rank must be 1 to 65536") }
            s.loraRank = loraRank
        }
        if let loraTargets { s.loraTargets = try Self.parseTargets(loraTargets) }
        s.gradientCheckpointing = gradientCheckpointing
        s.flashAttention = flashAttention
        s.optimizerInBackward = optimizerInBackward
        guard let l = PlanSettings.Loss(rawValue: loss) else {
            throw FTQError.usage("usage.loss", "--loss must be chunked or unfused (got \"\(loss)\")")
        }
        s.loss = l
        guard (0...3).contains(zero) else { throw FTQError.usage("usage.zero", "--zero must be 0, 1, 2 or 3") }
        if let gpus, gpus < 1 || gpus > 1 << 20 { throw FTQError.usage("usage.gpus", "--gpus must be 1 or more") }
        if zero > 0 && gpus == nil {
            throw FTQError.usage("usage.gpus", "--zero \(zero) shards over GPUs: say how many with --gpus N")
        }
        s.zeroStage = zero
        s.gpus = gpus ?? 1
        return s
    }

    static func parseTargets(_ text: String) throws -> Set<LinearKind> {
        if text == "all-linear" || text == "all" { return LinearKind.allLinear }
        var out = Set<LinearKind>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let name = Self.trimSpaces(part)
            guard LinearKind.targetNames.contains(name), let k = LinearKind(rawValue: name) else {
                throw FTQError.usage("usage.lora-targets", "--lora-targets takes a list of q,k,v,o,gate,up,down or all-linear (got \"\(text)\")")
            }
            out.insert(k)
        }
        return out
    }

    func run() throws {
        var s = try settings()
        let gpuBytes = try gpu.map(ByteSize.parse)
        let m = try PlanModel.load(model)
        let a = m.architecture
        var warnings = m.notes
        s.sequence = seq ?? min(2048, a.maxPositions ?? 2048)
        if let max = a.maxPositions, s.sequence > max {
            warnings.append("--seq \(s.sequence) is longer than the model's maximum of \(max) positions (max_position_embeddings): planned as asked, but the model was not trained for it")
        }
        if s.method != .full, !m.tensors.contains(where: { $0.linearKind?.isTargeted(by: s.loraTargets) ?? false }) {
            throw FTQError.invalid("plan.no-targets", file: model, "no projection of this model matches --lora-targets \(s.loraTargetsText)")
        }
        for w in warnings { writeStderr("ftq: warning: \(TerminalText.escaped(w, limit: 1000))\n") }
        let estimate = TrainingEstimator.estimate(m, s)
        let changes = gpuBytes.map { FitAdvisor.changes(m, s, gpuBytes: $0) } ?? []
        let inference = InferenceEstimate(m, context: s.sequence)
        let report = PlanReport(path: model, model: m, settings: s, estimate: estimate, gpuBytes: gpuBytes,
                                changes: changes, inference: inference, warnings: warnings)
        if json {
            try printOut(JSONText.serialize(report.json(), indent: 2) + "\n")
        } else {
            try printOut(report.text())
        }
    }
}

extension Plan {
    static func trimSpaces(_ text: Substring) -> String {
        var s = text
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
