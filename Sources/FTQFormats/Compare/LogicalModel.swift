import FTQCore
import FTQKernels

/// A model seen as the floating-point tensors it stands for (formats/metrics.md, "Values
/// compared"): plain float tensors, ggml-quantized tensors, and bitsandbytes weights (a packed
/// weight with its absmax, maps and quant state, or an int8 weight with its SCB), each one
/// logical tensor that decodes to float32 a window at a time.
public final class LogicalModel {
    public struct Tensor: Sendable {
        public let name: String
        public let shape: [Int]
        public let count: Int
        /// The stored type, for messages (`BF16`, `Q4_K`, `NF4`, `INT8`).
        public let typeName: String
        let source: Source
    }

    enum Source: Sendable {
        case plain(Int, DType)
        case ggml(Int, GGMLType)
        case fourBit(BnBDequantizer.FourBit)
        case int8(BnBDequantizer.Int8Weight)
    }

    public let model: Model
    /// Floating-point tensors in the model's order (integer and bool tensors are left out).
    public private(set) var tensors: [Tensor] = []
    let bnb: BnBDequantizer

    /// Windows start on multiples of this many elements (every block size divides it).
    public static let granule = 4096

    public init(_ model: Model) throws {
        self.model = model
        bnb = BnBDequantizer(model: model, options: ConvertOptions())
        if model.format == .safetensors && BnBDequantizer.detect(model) {
            for o in try bnb.outputs(defaultInt8: .F32) {
                let n = o.shape.reduce(1, *)
                switch o.item {
                case let .copy(k):
                    let t = model.tensors[k]
                    guard let d = t.type.plainDType, d.isConvertibleFloat else { continue }
                    tensors.append(Tensor(name: t.name, shape: t.shape, count: t.elementCount, typeName: d.rawValue, source: .plain(k, d)))
                case let .fourBit(f):
                    tensors.append(Tensor(name: o.name, shape: o.shape, count: n, typeName: f.type.rawValue.uppercased(), source: .fourBit(f)))
                case let .int8(w):
                    tensors.append(Tensor(name: o.name, shape: o.shape, count: n, typeName: "INT8", source: .int8(w)))
                }
            }
            return
        }
        for (k, t) in model.tensors.enumerated() {
            if let d = t.type.plainDType {
                guard d.isConvertibleFloat else { continue }
                tensors.append(Tensor(name: t.name, shape: t.shape, count: t.elementCount, typeName: d.rawValue, source: .plain(k, d)))
            } else if case let .ggml(g) = t.type, GGMLDequantizer.kernel(for: g) != nil {
                tensors.append(Tensor(name: t.name, shape: t.shape, count: t.elementCount, typeName: g.name, source: .ggml(k, g)))
            }
        }
    }

    /// A decoder for one tensor (it holds the tensor's expanded absmax or SCB, if any).
    public func decoder(_ t: Tensor) throws -> Decoder {
        try Decoder(self, t)
    }

    public final class Decoder {
        let owner: LogicalModel
        let tensor: Tensor
        var scratch: UnsafeMutableRawBufferPointer
        var absmax: [Float] = []
        var scb: [Float] = []
        var codec: BnB4BitCodec? = nil
        var kernel: GGMLDequantizer.Kernel? = nil

        init(_ owner: LogicalModel, _ t: Tensor) throws {
            self.owner = owner
            tensor = t
            scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 * LogicalModel.window + 64, alignment: 64)
            switch t.source {
            case let .fourBit(f):
                absmax = try owner.bnb.expandedAbsmax(f)
                codec = try owner.bnb.codec(f)
            case let .int8(w):
                scb = try owner.bnb.floats(w.scb)
            case let .ggml(_, g):
                kernel = GGMLDequantizer.kernel(for: g)
            case .plain:
                break
            }
        }

        deinit { scratch.deallocate() }

        /// Decodes elements [start, start + out.count) to float32. `start` must be a multiple of
        /// LogicalModel.granule; at most LogicalModel.window elements at a time.
        public func decode(start: Int, into out: UnsafeMutableBufferPointer<Float>) throws {
            let n = out.count
            precondition(start % LogicalModel.granule == 0 && n <= LogicalModel.window && start + n <= tensor.count)
            let model = owner.model
            switch tensor.source {
            case let .plain(k, d):
                let t = model.tensors[k]
                let size = d.bits / 8
                let raw = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<(n * size)])
                try model.file(of: t).read(into: raw, at: t.offset + start * size)
                DTypeConversion.convert(from: d, to: .F32, count: n, src: UnsafeRawBufferPointer(raw), dst: UnsafeMutableRawBufferPointer(out))
            case let .ggml(k, g):
                let t = model.tensors[k]
                let blocks = n / g.blockSize
                let raw = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<(blocks * g.typeSize)])
                try model.file(of: t).read(into: raw, at: t.offset + start / g.blockSize * g.typeSize)
                kernel!(UnsafeRawBufferPointer(raw), out)
            case let .fourBit(f):
                let t = model.tensors[f.weight]
                let bytes = BnB4BitCodec.packedBytes(n)
                let raw = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<bytes])
                try model.file(of: t).read(into: raw, at: t.offset + start / 2)
                absmax.withUnsafeBufferPointer { a in
                    codec!.dequantize(UnsafeRawBufferPointer(raw), absmax: UnsafeBufferPointer(rebasing: a[(start / f.blocksize)...]),
                                      count: n, into: out)
                }
            case let .int8(w):
                let t = model.tensors[w.weight]
                let cols = t.shape[1]
                let raw = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<n])
                try model.file(of: t).read(into: raw, at: t.offset + start)
                let q = UnsafeRawBufferPointer(raw).assumingMemoryBound(to: Int8.self)
                var i = 0
                while i < n {
                    let row = (start + i) / cols
                    let end = min(n, (row + 1) * cols - start)
                    LLMInt8.dequantizeRow(UnsafeBufferPointer(rebasing: q[i..<end]), scb: scb[row],
                                          into: UnsafeMutableBufferPointer(rebasing: out[i..<end]))
                    i = end
                }
            }
        }
    }

    /// Elements decoded per call: 2^18 (1 MiB of float32).
    public static let window = 1 << 18
}
