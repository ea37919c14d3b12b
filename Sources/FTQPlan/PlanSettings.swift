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

    public init() {}

    /// The LoRA targets as `--lora-targets` writes them.
    public var loraTargetsText: String {
        if LinearKind.allLinear.isSubset(of: loraTargets) { return "all-linear" }
        return LinearKind.targetNames.filter { loraTargets.contains(LinearKind(rawValue: $0)!) }.joined(separator: ",")
    }
}
