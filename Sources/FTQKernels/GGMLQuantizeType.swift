import FTQCore

/// The ggml types ftq quantizes to (formats/ggml-quants.md): the legacy 32-element blocks and
/// the K-quants Q4_K and Q6_K (256-element super-blocks).
public enum GGMLQuantizeType: String, CaseIterable, Sendable {
    case Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K

    public var legacy: GGMLLegacyQuant? { GGMLLegacyQuant(rawValue: rawValue) }
    public var kQuant: GGMLKQuant? { GGMLKQuant(rawValue: rawValue) }

    /// Elements per block: 32, or 256 for the K-quants.
    public var blockElements: Int { kQuant == nil ? GGMLLegacyQuant.blockElements : GGMLKQuant.blockElements }
    public var blockBytes: Int { legacy?.blockBytes ?? kQuant!.blockBytes }
    public var ggmlType: GGMLType { GGMLType.named(rawValue)! }

    /// `general.file_type` (llama.cpp's LLAMA_FTYPE_MOSTLY_*) of a model of this type: the
    /// legacy numbers, Q4_K_S (14) for Q4_K and Q6_K (18).
    public var fileType: UInt32 {
        switch self {
        case .Q4_K: return 14
        case .Q6_K: return 18
        default: return legacy!.fileType
        }
    }

    /// What llama-quantize writes for a row that is not a multiple of 256 elements: Q4_K -> Q5_0,
    /// Q6_K -> Q8_0 (nil for the legacy types, whose blocks are 32 elements).
    public var rowFallback: GGMLQuantizeType? {
        switch self {
        case .Q4_K: return .Q5_0
        case .Q6_K: return .Q8_0
        default: return nil
        }
    }

    /// Quantizes `x` (a whole number of blocks) into `out`.
    public func quantize(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableRawBufferPointer) {
        if let l = legacy { l.quantize(x, into: out) } else { kQuant!.quantize(x, into: out) }
    }
}
