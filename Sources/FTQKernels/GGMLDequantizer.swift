import FTQCore

/// Dequantization of ggml block types to float32: the entry point that format conversion uses.
/// Each type's scalar reference lives in `Reference/` (formats/ggml-quants.md); the slowest have
/// vectorised kernels in `Fast/`, tested bit for bit against the reference.
public enum GGMLDequantizer {
    /// A function that dequantizes whole blocks: `blocks * blockBytes` bytes in, `blocks *
    /// blockElements` floats out.
    public typealias Kernel = @Sendable (UnsafeRawBufferPointer, UnsafeMutableBufferPointer<Float>) -> Void

    /// The dequantizer of a ggml type, or nil when ftq cannot dequantize it yet.
    public static func kernel(for type: GGMLType) -> Kernel? {
        switch type.name {
        case "Q5_0": return { q, y in DequantFast.q5(q, into: y, withMin: false) }
        case "Q5_1": return { q, y in DequantFast.q5(q, into: y, withMin: true) }
        case "Q6_K": return { q, y in DequantFast.q6K(q, into: y) }
        default: break
        }
        if let legacy = GGMLLegacyQuant(rawValue: type.name) {
            return { q, y in legacy.dequantize(q, into: y) }
        }
        return extraKernels[type.name]
    }

    /// Kernels of the other block families, by ggml type name (the K-quants).
    static let extraKernels: [String: Kernel] = kQuantKernels
}
