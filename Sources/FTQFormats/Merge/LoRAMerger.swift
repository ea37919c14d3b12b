import FTQCore
import FTQKernels

/// `ftq merge BASE ADAPTER`: a LoRA adapter merged into a full-precision base as PEFT's
/// merge_and_unload does on the CPU (formats/lora-merge.md): every adapted weight gets
/// (B @ A) * scaling added in float32, rounded once to its dtype; everything else is copied.
public struct LoRAMerger {
    public let model: Model
    public let adapter: LoRAAdapter
    public let options: ConvertOptions

    public init(model: Model, adapter: LoRAAdapter, options: ConvertOptions) {
        self.model = model
        self.adapter = adapter
        self.options = options
    }

    /// Base tensor index -> adapter module, every target checked against the base.
    public func plan() throws -> [Int: LoRAAdapter.Module] {
        var index: [ExactName: Int] = [:]
        for (k, t) in model.tensors.enumerated() { index[ExactName(t.name)] = k }
        var out: [Int: LoRAAdapter.Module] = [:]
        for m in adapter.modules {
            guard let k = index[ExactName(m.name + ".weight")] else {
                throw FTQError.invalid("merge.missing-target", file: model.path,
                    "the adapter targets module \"\(m.name)\", but the base has no tensor \"\(m.name).weight\"")
            }
            let t = model.tensors[k]
            guard let d = t.type.plainDType, d == .F32 || d == .F16 || d == .BF16 else {
                throw FTQError.invalid("merge.base-dtype", file: model.file(of: t).path,
                    "tensor \"\(t.name)\" is \(t.type.name); ftq merges into F32, F16 and BF16 weights (quantized bases are not supported yet)")
            }
            let outF = m.b.shape[0], inF = m.a.shape[1]
            let want = adapter.fanInFanOut ? [inF, outF] : [outF, inF]
            guard t.shape == want else {
                throw FTQError.invalid("merge.shape-mismatch", file: model.file(of: t).path,
                    "tensor \"\(t.name)\" is \(t.shape), but the adapter's module \"\(m.name)\" needs \(want)\(adapter.fanInFanOut ? " (fan_in_fan_out)" : "")")
            }
            out[k] = m
        }
        return out
    }

    func outDType(_ t: TensorEntry) -> DType {
        let d = t.type.plainDType ?? .F32
        if let want = options.dtype, d.isConvertibleFloat { return want }
        return d
    }

    public func run(to target: OutputTarget) throws -> [WrittenFile] {
        let conv = Converter(model: model, options: options)
        try conv.refuseInputAsOutput(target.path)
        for t in model.tensors where t.type.plainDType == nil {
            throw FTQError.invalid("merge.base-dtype", file: model.file(of: t).path,
                "tensor \"\(t.name)\" is \(t.type.name); ftq merges into bases of plain tensors (quantized bases are not supported yet)")
        }
        let merges = try plan()
        let buffers = ChunkBuffers()
        let meta = conv.sourceSafetensorsMetadata() ?? [("format", "pt")]
        switch target {
        case let .safetensorsFile(path):
            try conv.refuseExistingSidecars(of: path)
            return try conv.commitWithSidecars(try write(Array(model.tensors.indices), merges: merges, metadata: meta, to: path,
                                                         name: nil, progress: nil, buffers: buffers))
        case let .hfDirectory(dir, maxShardSize):
            let sizes = model.tensors.map { outDType($0).byteCount(elements: $0.elementCount) ?? Int.max }
            let extra = try CompanionFiles.read(model) { bytes, _ in bytes }
            return try conv.writeDirectory(dir, maxShardSize: maxShardSize, names: model.tensors.map(\.name), sizes: sizes,
                                           parameters: model.tensors.reduce(0) { $0 + $1.elementCount }, extraFiles: extra) { idx, staged, name, prog in
                try write(idx, merges: merges, metadata: meta, to: staged, name: name, progress: prog, buffers: buffers)
            }
        case .gguf:
            throw FTQError.usage("usage.conflict", "ftq merge writes the base's form: a .safetensors file or a directory")
        }
    }

    func floats(_ t: TensorEntry) throws -> [Float] {
        let raw = try model.read(t)
        let src = adapterOrBaseDType(t)
        var out = [Float](repeating: 0, count: t.elementCount)
        raw.withUnsafeBytes { r in
            out.withUnsafeMutableBytes { DTypeConversion.convert(from: src, to: .F32, count: t.elementCount, src: r, dst: $0) }
        }
        return out
    }

    func adapterOrBaseDType(_ t: TensorEntry) -> DType { t.type.plainDType ?? .F32 }

    func write(_ indices: [Int], merges: [Int: LoRAAdapter.Module], metadata: [(String, String)], to path: String, name: String?,
               progress: Progress?, buffers: ChunkBuffers) throws -> (OutputFile, WrittenFile) {
        let conv = Converter(model: model, options: options)
        let specs = indices.map { (name: model.tensors[$0].name, dtype: outDType(model.tensors[$0]), shape: model.tensors[$0].shape) }
        let layout = try conv.naming(path) { try SafetensorsLayout(tensors: specs, metadata: metadata) }
        let out = try OutputFile(path, overwrite: options.overwrite)
        let hashes = options.digest.map { HashPipeline($0) }
        var written: [WrittenTensor] = []
        do {
            let prog = progress ?? Progress(label: "merge", totalBytes: layout.fileSize, quiet: options.quiet)
            try out.write(layout.headerBytes)
            hashes?.feed(layout.headerBytes, tensor: false)
            var offset = layout.headerBytes.count
            for item in layout.items {
                let k = indices[item.source]
                let t = model.tensors[k]
                if let m = merges[k] {
                    hashes?.beginTensor()
                    // The whole weight in float32 (memory: the largest adapted tensor).
                    var w = try floats(t)
                    let adapterSide = LoRAMerger(model: adapter.model, adapter: adapter, options: options)
                    let a = try adapterSide.floats(m.a), b = try adapterSide.floats(m.b)
                    w.withUnsafeMutableBufferPointer { wp in
                        a.withUnsafeBufferPointer { ap in
                            b.withUnsafeBufferPointer { bp in
                                LoRADelta.add(to: wp, rows: t.shape[0], cols: t.shape[1], a: ap, b: bp, rank: m.rank,
                                              scaling: Float(m.scaling), fanInFanOut: adapter.fanInFanOut)
                            }
                        }
                    }
                    let d = item.dtype
                    var bytes = [UInt8](repeating: 0, count: item.nbytes)
                    w.withUnsafeBytes { src in
                        bytes.withUnsafeMutableBytes { DTypeConversion.convert(from: .F32, to: d, count: w.count, src: src, dst: $0) }
                    }
                    try bytes.withUnsafeBytes { b in
                        try out.write(b)
                        hashes?.feed(b, tensor: true)
                    }
                    prog.advance(bytes.count)
                    hashes?.endTensor()
                } else {
                    try conv.copy(t, as: item.dtype == t.type.plainDType ? nil : item.dtype, to: out, progress: prog, buffers: buffers, hashes: hashes)
                }
                written.append(WrittenTensor(name: item.name, dtype: item.dtype.rawValue, shape: item.shape, offset: offset, nbytes: item.nbytes, sha256: nil))
                offset += item.nbytes
            }
            if progress == nil { prog.finish() }
            try out.finish()
        } catch {
            out.abort()
            throw error
        }
        return (out, Converter.written(path: path, name: name ?? splitPath(path).base, bytes: layout.fileSize, tensors: written, hashes: hashes))
    }
}
