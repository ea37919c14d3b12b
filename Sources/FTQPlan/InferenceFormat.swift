import FTQCore
import FTQKernels

/// A format ftq writes, sized tensor by tensor by the rules `ftq quantize` follows
/// (formats/plan.md, "Inference"; formats/cli.md, "quantize"). Block sizes come from the
/// codecs in FTQKernels, so a size here cannot drift from what ftq writes.
public enum InferenceFormat: Sendable, Equatable, CaseIterable {
    /// Unquantized 16-bit weights (the usual checkpoint).
    case bf16
    /// A ggml type written as GGUF (`ftq quantize --type`).
    case ggml(GGMLQuantizeType)
    /// bitsandbytes LLM.int8 (`ftq quantize --int8`).
    case int8
    /// bitsandbytes NF4 (or FP4: the same layout) with double quantization, blocks of 64
    /// (`ftq quantize --nf4`, its defaults).
    case nf4

    public static let allCases: [InferenceFormat] =
        [.bf16, .ggml(.Q8_0), .int8, .ggml(.Q6_K), .ggml(.Q5_1), .ggml(.Q5_0), .ggml(.Q4_1), .ggml(.Q4_K), .ggml(.Q4_0), .nf4]

    /// The 4-bit block size of ``nf4`` (ftq quantize's default).
    public static let nf4Blocksize = 64

    /// The name printed (`Q4_K`, `NF4`, ...).
    public var name: String {
        switch self {
        case .bf16: return "BF16"
        case let .ggml(t): return t.rawValue
        case .int8: return "INT8"
        case .nf4: return "NF4"
        }
    }

    /// Bits per weight of a quantized tensor with rows of `columns` elements (INT8's float32
    /// scale is per row; the others' scales are per block).
    public func bitsPerWeight(columns: Int = 4096) -> Double {
        switch self {
        case .bf16: return 16
        case let .ggml(t): return Double(t.blockBytes * 8) / Double(t.blockElements)
        case .int8: return 8 + 32 / Double(max(columns, 1))
        case .nf4:
            // 4-bit codes, one uint8 absmax per block, one float32 absmax per 256 blocks.
            let b = Double(Self.nf4Blocksize)
            return 4 + 8 / b + 32 / (b * Double(BnBDoubleQuant.nestedBlocksize))
        }
    }

    /// Stored bytes of NF4 with double quantization for `n` elements: packed codes, the
    /// quantized absmax, the nested absmax and both code tables (as BnBQuantizer writes them,
    /// less the few hundred bytes of its quant_state JSON).
    public static func nf4Bytes(elements n: Int) -> Int {
        let blocks = (n + nf4Blocksize - 1) / nf4Blocksize
        let nested = (blocks + BnBDoubleQuant.nestedBlocksize - 1) / BnBDoubleQuant.nestedBlocksize
        return BnB4BitCodec.packedBytes(n) + blocks + nested * 4 + 16 * 4 + 256 * 4
    }

    /// Bytes of one tensor in this format. bitsandbytes formats quantize the linear
    /// projections and keep everything else in 16 bits; ggml types quantize every 2-D tensor
    /// (with llama-quantize's fallbacks for rows that do not fill a block) and store 1-D
    /// tensors as F32.
    public func bytes(of t: PlanTensor) -> Int {
        let n = t.elements
        switch self {
        case .bf16:
            return n * 2
        case .nf4:
            return t.linearKind != nil ? Self.nf4Bytes(elements: n) : n * 2
        case .int8:
            // int8 codes plus one float32 scale (SCB) per output row.
            return t.linearKind != nil ? n + t.shape[0] * 4 : n * 2
        case let .ggml(type):
            guard t.shape.count == 2 else { return n * 4 }
            let row = t.shape[1]
            var chosen: GGMLQuantizeType? = type
            if row % type.blockElements != 0 {
                chosen = type.rowFallback.flatMap { row % $0.blockElements == 0 ? $0 : nil }
            }
            guard let q = chosen else { return n * 2 }  // kept as F16
            return n / q.blockElements * q.blockBytes
        }
    }
}

/// Weights-only size and KV cache of a model for running it (formats/plan.md, "Inference").
public struct InferenceEstimate: Sendable {
    public struct Row: Sendable {
        public var format: InferenceFormat
        public var bitsPerWeight: Double
        public var weightBytes: Int
        /// Weights plus the KV cache.
        public var totalBytes: Int
    }

    /// The context the KV cache is sized for.
    public var context: Int
    /// 16-bit keys and values for `context` tokens, batch 1.
    public var kvCacheBytes: Int
    public var kvFormula: String
    public var rows: [Row]

    /// The device sizes the table answers for: 4 GiB and 8 GiB.
    public static let devices: [(name: String, bytes: Int)] = [("4 GiB", 4 << 30), ("8 GiB", 8 << 30)]

    public init(_ model: PlanModel, context: Int) {
        let a = model.architecture
        self.context = context
        // Decoder self-attention caches K and V per layer; T5's decoder also caches the
        // cross-attention K and V of the encoder's `context` tokens.
        let positions = a.isEncoderDecoder ? 2 * context : context
        kvCacheBytes = 2 * a.layers * a.kvDim * positions * 2
        kvFormula = "2 (K, V) × \(a.layers) layers × \(a.kvDim) (KV heads × head dim) × \(positions) tokens"
            + (a.isEncoderDecoder ? " (self + cross attention)" : "") + " × 2 B"
        let columns = a.hidden, kv = kvCacheBytes
        rows = InferenceFormat.allCases.map { f in
            let w = model.tensors.reduce(0) { $0 + f.bytes(of: $1) }
            return Row(format: f, bitsPerWeight: f.bitsPerWeight(columns: columns), weightBytes: w, totalBytes: w + kv)
        }
    }
}
