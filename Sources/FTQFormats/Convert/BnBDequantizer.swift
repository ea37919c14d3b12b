import FTQCore
import FTQKernels

/// `ftq dequantize` of a bitsandbytes-layout checkpoint (formats/bnb-quants.md, "Safetensors
/// layout"; formats/cli.md, "dequantize"): every quantized weight with its companions becomes
/// one floating-point tensor; everything else is copied.
public struct BnBDequantizer {
    public let model: Model
    public let options: ConvertOptions
    /// Values that replace a weight's decoded ones (by its packed or int8 tensor's index), or a
    /// kept tensor's (by its index): the merged weights and modules_to_save copies of
    /// `ftq merge --dequantize`.
    var replacements: [Int: () throws -> [Float]] = [:]

    public init(model: Model, options: ConvertOptions) {
        self.model = model
        self.options = options
    }

    static let fourBitSuffixes = [".quant_state.bitsandbytes__nf4", ".quant_state.bitsandbytes__fp4"]

    /// True when the model holds a bitsandbytes 4-bit quant state or an int8 `SCB`.
    public static func detect(_ model: Model) -> Bool {
        model.tensors.contains { t in
            fourBitSuffixes.contains(where: t.name.hasByteSuffix) || (t.name.hasByteSuffix(".SCB") && t.type.plainDType == .F32)
        }
    }

    /// One 4-bit weight and its parts (tensor indices into the model).
    struct FourBit {
        var weight: Int
        var absmax: Int
        var quantMap: Int
        var nestedAbsmax: Int?
        var nestedQuantMap: Int?
        var type: BnB4BitType
        var blocksize: Int
        var offset: Float?
        var count: Int
        var shape: [Int]
        var dtype: DType
    }

    struct Int8Weight {
        var weight: Int
        var scb: Int
    }

    enum Item {
        case copy(Int)
        case fourBit(FourBit)
        case int8(Int8Weight)
    }

    struct Output {
        var name: String
        var dtype: DType
        var shape: [Int]
        var item: Item
    }

    func fail(_ t: TensorEntry, _ message: String) -> FTQError {
        FTQError.invalid("dequantize.bnb-state", file: model.file(of: t).path, "tensor \"\(t.name)\": \(message)")
    }

    func find(_ name: String) -> Int? {
        model.tensors.firstIndex { ExactName($0.name) == ExactName(name) }
    }

    /// The torch dtype name of a quant state.
    static func dtype(_ s: String) -> DType? {
        switch s {
        case "bfloat16": return .BF16
        case "float16": return .F16
        case "float32": return .F32
        default: return nil
        }
    }

    /// The plan: the output tensors in source order, every part checked against its state.
    func outputs(defaultInt8: DType) throws -> [Output] {
        var index: [ExactName: Int] = [:]
        for (k, t) in model.tensors.enumerated() { index[ExactName(t.name)] = k }
        var consumed = Set<Int>()
        var made: [Int: Output] = [:]
        for (k, t) in model.tensors.enumerated() {
            guard let suffix = Self.fourBitSuffixes.first(where: t.name.hasByteSuffix) else { continue }
            let p = String(t.name.dropLast(suffix.count))
            guard let w = index[ExactName(p)] else { throw fail(t, "the quantized weight \"\(p)\" is missing") }
            let json = try model.read(t)
            guard json.count <= 4096 else { throw fail(t, "quant state of \(json.count) bytes (at most 4096)") }
            let state: [(String, JSONValue)]
            do {
                guard case let .object(m) = try StrictJSON.parse(json) else { throw fail(t, "the quant state is not a JSON object") }
                state = m
            } catch let e as FTQError where e.code != "dequantize.bnb-state" {
                throw fail(t, "the quant state is not valid JSON (\(e.message))")
            }
            func field(_ key: String) -> JSONValue? { state.first { $0.0 == key }?.1 }
            func int(_ key: String) throws -> Int {
                guard case let .number(s)? = field(key), let v = Int(s) else { throw fail(t, "\"\(key)\" is missing or not an integer") }
                return v
            }
            let quantType = String(suffix.dropFirst(".quant_state.bitsandbytes__".count))
            guard case let .string(qt)? = field("quant_type"), qt == quantType else {
                throw fail(t, "\"quant_type\" does not say \(quantType)")
            }
            let bs = try int("blocksize")
            guard BnB4BitType.blockSizes.contains(bs) else { throw fail(t, "blocksize \(bs) is not one of 32..4096 (a power of two)") }
            guard case let .string(ds)? = field("dtype"), let dtype = Self.dtype(ds) else {
                throw fail(t, "\"dtype\" must be bfloat16, float16 or float32")
            }
            guard case let .array(dims)? = field("shape"), !dims.isEmpty, dims.count <= 8 else { throw fail(t, "\"shape\" is missing") }
            var shape: [Int] = []
            for d in dims {
                guard case let .number(s) = d, let v = Int(s), v >= 0 else { throw fail(t, "\"shape\" must hold non-negative integers") }
                shape.append(v)
            }
            let n = try Checked.product(shape, "dequantize.bnb-state", "shape of \(p)")
            let blocks = (n + bs - 1) / bs
            let wt = model.tensors[w]
            guard wt.nbytes == BnB4BitCodec.packedBytes(n) else {
                throw fail(wt, "holds \(wt.nbytes) bytes; shape \(shape) needs \(BnB4BitCodec.packedBytes(n))")
            }
            func part(_ name: String, _ dtype: DType, _ count: Int) throws -> Int {
                guard let i = index[ExactName(p + "." + name)] else { throw fail(t, "the part \"\(p).\(name)\" is missing") }
                let pt = model.tensors[i]
                guard pt.type.plainDType == dtype, pt.elementCount == count else {
                    throw fail(pt, "must be \(dtype.rawValue) with \(count) values (it is \(pt.type.name) with \(pt.elementCount))")
                }
                consumed.insert(i)
                return i
            }
            let quantMap = try part("quant_map", .F32, 16)
            var nested: Int? = nil, nestedMap: Int? = nil, offset: Float? = nil, absmax: Int
            if field("nested_offset") != nil {
                guard try int("nested_blocksize") == 256 else { throw fail(t, "nested_blocksize must be 256") }
                guard case let .number(s)? = field("nested_offset"), let o = Double(s), Float(o).isFinite else {
                    throw fail(t, "\"nested_offset\" must be a finite number")
                }
                offset = Float(o)
                absmax = try part("absmax", .U8, blocks)
                nested = try part("nested_absmax", .F32, (blocks + 255) / 256)
                nestedMap = try part("nested_quant_map", .F32, 256)
            } else {
                absmax = try part("absmax", .F32, blocks)
            }
            consumed.insert(k)
            consumed.insert(w)
            made[w] = Output(name: p, dtype: options.dtype ?? dtype, shape: shape,
                             item: .fourBit(FourBit(weight: w, absmax: absmax, quantMap: quantMap, nestedAbsmax: nested,
                                                    nestedQuantMap: nestedMap, type: BnB4BitType(rawValue: quantType)!, blocksize: bs, offset: offset, count: n,
                                                    shape: shape, dtype: dtype)))
        }
        for (k, t) in model.tensors.enumerated() where t.name.hasByteSuffix(".SCB") && t.type.plainDType == .F32 {
            let module = String(t.name.dropLast(".SCB".count))
            guard let w = index[ExactName(module + ".weight")] else { throw fail(t, "the int8 weight \"\(module).weight\" is missing") }
            let wt = model.tensors[w]
            guard wt.type.plainDType == .I8, wt.shape.count == 2, wt.shape[0] == t.elementCount else {
                throw fail(wt, "an int8 weight must be I8 [rows, columns] with one SCB per row (it is \(wt.type.name) \(wt.shape), SCB \(t.elementCount))")
            }
            if let f = index[ExactName(module + ".weight_format")] {
                let ft = model.tensors[f]
                guard ft.type.plainDType == .U8, ft.elementCount == 1, try model.read(ft) == [0] else {
                    throw fail(ft, "only the row-major weight format (0) is supported")
                }
                consumed.insert(f)
            }
            consumed.insert(k)
            consumed.insert(w)
            made[w] = Output(name: wt.name, dtype: options.dtype ?? defaultInt8, shape: wt.shape, item: .int8(Int8Weight(weight: w, scb: k)))
        }
        var out: [Output] = []
        for (k, t) in model.tensors.enumerated() {
            if let o = made[k] { out.append(o); continue }
            if consumed.contains(k) { continue }
            guard let d = t.type.plainDType else {
                throw FTQError.invalid("convert.quantized-tensor", file: model.file(of: t).path,
                    "tensor \"\(t.name)\" is \(t.type.name); a bitsandbytes checkpoint holds plain tensors besides its quantized weights")
            }
            out.append(Output(name: t.name, dtype: d.isConvertibleFloat ? (options.dtype ?? d) : d, shape: t.shape, item: .copy(k)))
        }
        return out
    }

    /// The int8 output dtype when --dtype is not given: config.json's `dtype` / `torch_dtype`
    /// when it names a float type, else F16 (what Linear8bitLt quantized from).
    func configDType() throws -> DType {
        guard case .directory = PathKind.of(model.path) else { return .F16 }
        let path = joinPath(model.path, "config.json")
        guard PathKind.of(path) == .regularFile else { return .F16 }
        let f = try InputFile(path)
        guard f.size <= CompanionFiles.maxBytes else { return .F16 }
        let members = try CompanionFiles.parseConfig(try f.read(at: 0, count: f.size), path: path)
        for key in ["dtype", "torch_dtype"] {
            if case let .string(s)? = members.first(where: { $0.0 == key })?.1, let d = Self.dtype(s) { return d }
        }
        return .F16
    }

    /// Writes the dequantized model to a safetensors file or a directory.
    public func run(to target: OutputTarget) throws -> [WrittenFile] {
        let conv = Converter(model: model, options: options)
        try conv.refuseInputAsOutput(target.path)
        let outs = try outputs(defaultInt8: try configDType())
        let buffers = ChunkBuffers()
        let meta = conv.sourceSafetensorsMetadata() ?? [("format", "pt")]
        switch target {
        case let .safetensorsFile(path):
            try conv.refuseExistingSidecars(of: path)
            return try conv.commitWithSidecars(try write(outs, indices: Array(outs.indices), metadata: meta, to: path, name: nil,
                                                         progress: nil, buffers: buffers))
        case let .hfDirectory(dir, maxShardSize):
            let sizes = try outs.map { o -> Int in
                try Checked.mul(try Checked.product(o.shape, "convert.size-overflow", "tensor \"\(o.name)\""), o.dtype.bits / 8,
                                "convert.size-overflow", "tensor \"\(o.name)\"")
            }
            let extra = try CompanionFiles.read(model) { bytes, path in
                var members = try CompanionFiles.parseConfig(bytes, path: path)
                members.removeAll { $0.0 == "quantization_config" }
                return CompanionFiles.serializeConfig(members)
            }
            return try conv.writeDirectory(dir, maxShardSize: maxShardSize, names: outs.map(\.name), sizes: sizes,
                                           parameters: outs.reduce(0) { $0 + $1.shape.reduce(1, *) }, extraFiles: extra) { idx, staged, name, prog in
                try write(outs, indices: idx, metadata: meta, to: staged, name: name, progress: prog, buffers: buffers)
            }
        case .gguf:
            throw FTQError.usage("usage.conflict", "a bitsandbytes checkpoint dequantizes to safetensors: give -o NAME.safetensors or a directory")
        }
    }

    func write(_ outs: [Output], indices: [Int], metadata: [(String, String)], to path: String, name: String?,
               progress: Progress?, buffers: ChunkBuffers) throws -> (OutputFile, WrittenFile) {
        let conv = Converter(model: model, options: options)
        let specs = indices.map { (name: outs[$0].name, dtype: outs[$0].dtype, shape: outs[$0].shape) }
        return try conv.streamSafetensors(specs, metadata: metadata, to: path, name: name, progress: progress, label: "dequantize") { i, _, emit in
            let o = outs[indices[i]]
            switch o.item {
            case let .copy(k):
                if let values = replacements[k] {
                    try emitAll(try values(), as: o.dtype, buffers: buffers, emit: emit)
                } else {
                    try conv.copyConverted(model.tensors[k], as: o.dtype, to: emit, buffers: buffers)
                }
            case let .fourBit(f):
                if let values = replacements[f.weight] {
                    try emitAll(try values(), as: o.dtype, buffers: buffers, emit: emit)
                } else {
                    try dequantize4(f, as: o.dtype, buffers: buffers, emit: emit)
                }
            case let .int8(w):
                if let values = replacements[w.weight] {
                    try emitAll(try values(), as: o.dtype, buffers: buffers, emit: emit)
                } else {
                    try dequantizeInt8(w, as: o.dtype, buffers: buffers, emit: emit)
                }
            }
        }
    }

    /// Writes float32 values as `dtype`, a 1 MiB slice at a time.
    func emitAll(_ values: [Float], as dtype: DType, buffers: ChunkBuffers, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        try values.withUnsafeBufferPointer { v in
            var at = 0
            while at < v.count {
                let n = min(1 << 18, v.count - at)
                try emitFloats(UnsafeBufferPointer(rebasing: v[at..<(at + n)]), as: dtype, buffers: buffers, emit: emit)
                at += n
            }
        }
    }

    func floats(_ k: Int) throws -> [Float] {
        let b = try model.read(model.tensors[k])
        return b.withUnsafeBytes { raw in (0..<(b.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) } }
    }

    /// Writes float32 values `y` as `dtype`.
    func emitFloats(_ y: UnsafeBufferPointer<Float>, as dtype: DType, buffers: ChunkBuffers,
                    emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        if dtype == .F32 { return try emit(UnsafeRawBufferPointer(y)) }
        DTypeConversion.convert(from: .F32, to: dtype, count: y.count, src: UnsafeRawBufferPointer(y), dst: buffers.converted)
        try emit(UnsafeRawBufferPointer(rebasing: buffers.converted[0..<(y.count * dtype.bits / 8)]))
    }

    /// Decodes one 4-bit weight a slice at a time (formats/bnb-quants.md, "4-bit", "Double
    /// quantization"); the absmax vector (one float per block) is expanded first.
    /// The absmax of every block of a 4-bit weight, expanded from its double quantization.
    func expandedAbsmax(_ f: FourBit) throws -> [Float] {
        guard let nestedIdx = f.nestedAbsmax, let mapIdx = f.nestedQuantMap, let offset = f.offset else {
            return try floats(f.absmax)
        }
        let q = try model.read(model.tensors[f.absmax])
        let nested = try floats(nestedIdx), code8 = try floats(mapIdx)
        return (0..<q.count).map { j in code8[Int(q[j])] * nested[j / BnBDoubleQuant.nestedBlocksize] + offset }
    }

    /// A decoder for a 4-bit weight with its own stored code table.
    func codec(_ f: FourBit) throws -> BnB4BitCodec {
        BnB4BitCodec(type: f.type, blocksize: f.blocksize, code: try floats(f.quantMap))
    }

    func dequantize4(_ f: FourBit, as dtype: DType, buffers: ChunkBuffers, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        let absmax = try expandedAbsmax(f)
        let codec = try self.codec(f)
        let floats = buffers.floats.bindMemory(to: Float.self)
        // Slices of whole blocks: at most floats.count values, i.e. floats.count / 2 bytes.
        let sliceBytes = max(f.blocksize / 2, floats.count / 2 / (f.blocksize / 2) * (f.blocksize / 2))
        var element = 0
        try model.forEachChunk(of: model.tensors[f.weight], chunkBytes: sliceBytes, granule: f.blocksize / 2, buffer: buffers.read) { chunk in
            let n = min(chunk.count * 2, f.count - element)
            try absmax.withUnsafeBufferPointer { ap in
                codec.dequantize(chunk, absmax: UnsafeBufferPointer(rebasing: ap[(element / f.blocksize)...]), count: n,
                                 into: UnsafeMutableBufferPointer(rebasing: floats[0..<n]))
            }
            try emitFloats(UnsafeBufferPointer(rebasing: floats[0..<n]), as: dtype, buffers: buffers, emit: emit)
            element += n
        }
    }

    /// Decodes one int8 weight row by row: float32(q * SCB) * float32(1/127).
    func dequantizeInt8(_ w: Int8Weight, as dtype: DType, buffers: ChunkBuffers, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        let scb = try floats(w.scb)
        let t = model.tensors[w.weight]
        let cols = t.shape[1]
        guard cols > 0 else { return }
        let y = UnsafeMutableBufferPointer<Float>.allocate(capacity: cols)
        defer { y.deallocate() }
        var row = 0
        let rowBuffer = cols > Model.chunkBytes ? nil : buffers.read
        try model.forEachChunk(of: t, granule: cols, buffer: rowBuffer) { chunk in
            var at = 0
            while at < chunk.count {
                let q = UnsafeRawBufferPointer(rebasing: chunk[at..<(at + cols)]).assumingMemoryBound(to: Int8.self)
                LLMInt8.dequantizeRow(q, scb: scb[row], into: y)
                try emitFloats(UnsafeBufferPointer(y), as: dtype, buffers: buffers, emit: emit)
                row += 1
                at += cols
            }
        }
    }
}
