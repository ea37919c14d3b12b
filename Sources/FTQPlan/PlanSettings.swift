/// How a model is to be trained: everything `ftq plan` takes besides the model.
public struct PlanSettings: Sendable, Equatable {
    /// What is trained.
    public enum Method: String, CaseIterable, Sendable {
        /// Every parameter.
        case full
        /// Low-rank adapters on a frozen 16-bit model.
        case lora
        /// Low-rank adapters on a frozen model whose linear weights are NF4 with double quantization.
        case qlora
    }

    /// The optimizer, which decides the bytes of state per trainable parameter.
    public enum Optimizer: String, CaseIterable, Sendable {
        /// Two float32 moments (in bfloat16 under `pure-bf16`).
        case adamw
        /// bitsandbytes 8-bit AdamW: two uint8 moments with a float32 absmax per 256.
        case adamw8bit = "adamw-8bit"
        /// The same, in CUDA unified memory that spills to the CPU when the GPU is full.
        case pagedAdamw8bit = "paged-adamw-8bit"
        /// bitsandbytes paged 32-bit AdamW (QLoRA's default).
        case pagedAdamw = "paged-adamw"
        /// SGD with momentum: one state per parameter.
        case sgd
        /// Adafactor without first moment: factored second moments (rows + columns per matrix).
        case adafactor

        /// Paged optimizers allocate their state in memory the driver can move to the CPU.
        public var isPaged: Bool { self == .pagedAdamw8bit || self == .pagedAdamw }
    }

    /// Number formats of weights, gradients and optimizer state.
    public enum Precision: String, CaseIterable, Sendable {
        /// float32 everything.
        case fp32
        /// Mixed precision: 16-bit weights and gradients, a float32 master copy of the trainable
        /// weights in the optimizer.
        case fp16, bf16
        /// bfloat16 everything, no master copy (torchtune's and `--bf16` full-model recipes that
        /// load the model in bfloat16); optimizer state follows the parameters' dtype.
        case pureBF16 = "pure-bf16"

        /// Bytes of a weight and of a gradient.
        public var weightBytes: Int { self == .fp32 ? 4 : 2 }
        /// Bytes of the float32 master copy per trainable parameter (mixed precision only).
        public var masterBytes: Int { self == .fp16 || self == .bf16 ? 4 : 0 }
        /// Bytes per element of a stored activation.
        public var activationBytes: Int { self == .fp32 ? 4 : 2 }
        /// The dtype's name in formulas.
        public var dtypeName: String { self == .fp32 ? "fp32" : self == .fp16 ? "fp16" : "bf16" }
    }

    /// How the loss is computed from the logits, which decides the bytes per logit alive at
    /// the loss's peak (formats/plan.md, "logits").
    public enum Loss: String, CaseIterable, Sendable {
        /// The output projection and the cross-entropy one chunk of tokens at a time, the float32
        /// work fused (torchtune's CEWithChunkedOutputLoss under torch.compile, Liger's fused
        /// linear cross-entropy): only the 16-bit logits stay alive, 2 bytes per logit.
        case chunked
        /// The whole [b, s, V] logits upcast to float32 and passed to PyTorch's cross_entropy
        /// (transformers' Trainer, TRL, PEFT scripts): the float32 log-softmax saved for the
        /// backward pass, the float32 gradient nll_loss returns and the one log_softmax's
        /// backward makes, 12 bytes per logit.
        case unfused

        /// Bytes per logit element alive at the loss's peak: point, low, high.
        public var bytesPerLogit: (point: Double, low: Double, high: Double) {
            switch self {
            // high: without torch.compile each chunk's float32 log-softmax (4 B) is saved for
            // the backward pass beside the 16-bit logits (2 B).
            case .chunked: return (2, 2, 6)
            // low: torch.compile fuses the upcast and the log-softmax (torchtune measured its
            // compiled unfused loss 8.3 B per logit above its chunked one: about 10).
            case .unfused: return (12, 10, 12)
            }
        }
    }

    public var method: Method = .full
    public var optimizer: Optimizer = .adamw
    public var precision: Precision = .bf16
    /// Micro-batch per GPU.
    public var batch = 1
    /// Tokens per sequence (for T5: both the input and the target length).
    public var sequence = 2048
    public var loraRank = 8
    public var loraTargets: Set<LinearKind> = LinearKind.allLinear
    public var gradientCheckpointing = false
    public var flashAttention = false
    /// DeepSpeed ZeRO stage (FSDP full sharding is stage 3).
    public var zeroStage = 0
    /// GPUs sharing the ZeRO shards (data-parallel ranks).
    public var gpus = 1
    /// Each parameter is stepped as soon as its gradient is ready and the gradient freed
    /// (torchtune's `optimizer_in_bwd`).
    public var optimizerInBackward = false
    /// The loss computation; unfused is what transformers-based scripts run.
    public var loss: Loss = .unfused

    public init() {}

    /// The LoRA targets as `--lora-targets` writes them.
    public var loraTargetsText: String {
        if LinearKind.allLinear.isSubset(of: loraTargets) { return "all-linear" }
        return LinearKind.targetNames.filter { loraTargets.contains(LinearKind(rawValue: $0)!) }.joined(separator: ",")
    }
}
