import FTQCore
import FTQKernels

/// The error of a quantization, gathered while it runs (`ftq quantize --report`): for every
/// quantized tensor, its source values against what its output decodes to, without a second
/// read of the input (formats/metrics.md). Filled by one thread at a time.
public final class QuantizationReport: @unchecked Sendable {
    public private(set) var tensors: [TensorComparison] = []
    let gguf: Bool

    public init(sourceIsGGUF: Bool = false) { gguf = sourceIsGGUF }

    func add(_ t: TensorEntry, type: String, stats: ErrorStats) {
        add(name: t.name, shape: t.shape, typeA: t.type.name, typeB: type, stats: stats)
    }

    func add(name: String, shape: [Int], typeA: String, typeB: String, stats: ErrorStats) {
        tensors.append(TensorComparison(name: name, kind: Comparison.kind(of: name, gguf: gguf), layer: Comparison.layer(of: name),
                                        shape: shape, typeA: typeA, typeB: typeB, stats: stats))
    }

    /// The figures in the form `ftq compare` reports them.
    public var comparison: ModelComparison { ModelComparison(tensors: tensors, onlyInA: [], onlyInB: []) }
}
