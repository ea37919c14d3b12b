import FTQCore
import FTQKernels

/// Merging into a bitsandbytes base, as PEFT's merges into a Linear4bit and a Linear8bitLt do on
/// the CPU (formats/lora-merge.md, "Quantized bases"): a 4-bit weight is dequantized to its
/// quant state's dtype, the float32 delta added, and the float32 sum quantized again with the
/// same type, block size and double quantization (its quant state then says float32); an int8
/// weight's float32 dequantization plus the delta is quantized again as LLM.int8.
struct QuantizedBaseMerge {
    let merger: LoRAMerger
    var model: Model { merger.model }
    let bnb: BnBDequantizer

    /// A merged 4-bit weight's small parts, from the first pass.
    struct Small {
        var absmax: [Float]
        var dq: BnBDoubleQuant?
        var json: [UInt8]
    }

    init(_ merger: LoRAMerger) {
        self.merger = merger
        bnb = BnBDequantizer(model: merger.model, options: ConvertOptions())
    }

    /// Adapted int8 weights: the weight's index -> (its parts, its updates).
    func int8Plan() throws -> [Int: (BnBDequantizer.Int8Weight, LoRAMerger.Update)] {
        var byName: [ExactName: BnBDequantizer.Int8Weight] = [:]
        for o in try bnb.outputs(defaultInt8: .F16) {
            if case let .int8(w) = o.item { byName[ExactName(o.name)] = w }
        }
        var out: [Int: (BnBDequantizer.Int8Weight, LoRAMerger.Update)] = [:]
        var updates: [String: LoRAMerger.Update] = [:]
        for (j, adapter) in merger.adapters.enumerated() {
            for m in adapter.modules {
                guard let w = byName[ExactName(m.name + ".weight")] else { continue }
                let t = model.tensors[w.weight]
                try merger.checkShape(m, of: t.name, t.shape, file: model.path)
                updates[m.name, default: []].append((j, m))
                out[w.weight] = (w, updates[m.name]!)
            }
        }
        return out
    }

    /// Adapted 4-bit weights: the packed tensor's index -> (its parts, its updates).
    func plan() throws -> [Int: (BnBDequantizer.FourBit, LoRAMerger.Update)] {
        var byName: [ExactName: BnBDequantizer.FourBit] = [:]
        var int8Names = Set<ExactName>()
        for o in try bnb.outputs(defaultInt8: .F16) {
            if case let .fourBit(f) = o.item { byName[ExactName(o.name)] = f }
            if case .int8 = o.item { int8Names.insert(ExactName(o.name)) }
        }
        var out: [Int: (BnBDequantizer.FourBit, LoRAMerger.Update)] = [:]
        var updates: [String: LoRAMerger.Update] = [:]
        for (j, adapter) in merger.adapters.enumerated() {
            for m in adapter.modules {
                if int8Names.contains(ExactName(m.name + ".weight")) { continue }
                guard let f = byName[ExactName(m.name + ".weight")] else {
                    throw FTQError.invalid("merge.missing-target", file: model.path,
                        "the adapter \(adapter.path) targets module \"\(m.name)\", but the base has no 4-bit weight \"\(m.name).weight\" (merging into the kept tensors of a quantized base is not supported yet)")
                }
                try merger.checkShape(m, of: m.name + ".weight", f.shape, file: model.path)
                updates[m.name, default: []].append((j, m))
                out[f.weight] = (f, updates[m.name]!)
            }
        }
        return out
    }

    /// modules_to_save: base tensor index -> (adapter index, the adapter's copy). Only tensors
    /// the base keeps in full precision can be replaced (a bitsandbytes checkpoint quantizes the
    /// linear weights, not lm_head or the embeddings); a quantized weight or one of its parts is
    /// refused.
    func replacements(updated: Set<Int>) throws -> [Int: (Int, TensorEntry)] {
        var quantized = Set<ExactName>()
        for o in try bnb.outputs(defaultInt8: .F16) {
            switch o.item {
            case let .fourBit(f):
                for k in [f.weight, f.absmax] + (f.nestedAbsmax.map { [$0] } ?? []) { quantized.insert(ExactName(model.tensors[k].name)) }
            case let .int8(w):
                for k in [w.weight, w.scb] { quantized.insert(ExactName(model.tensors[k].name)) }
            default:
                break
            }
        }
        for (j, adapter) in merger.adapters.enumerated() {
            for (name, _) in adapter.replacements where quantized.contains(ExactName(name)) {
                throw FTQError.invalid("merge.adapter-config", file: merger.adapters[j].configPath,
                    "modules_to_save replaces \"\(name)\", a quantized weight of the base; only tensors the base keeps in full precision can be replaced (quantized ones are not supported yet)")
            }
        }
        var marks: [Int: LoRAMerger.Update] = [:]
        for k in updated { marks[k] = [] }
        return try merger.replacementPlan(marks)
    }

    /// An adapter's modules_to_save copy as float32, rounded first to the base tensor's dtype
    /// (as loading it into the base's module does).
    func replacementValues(_ j: Int, _ rep: TensorEntry, baseDType: DType) throws -> [Float] {
        let a = merger.adapters[j]
        let raw = try a.model.read(rep)
        let n = rep.elementCount
        var stored = [UInt8](repeating: 0, count: n * baseDType.bits / 8)
        var out = [Float](repeating: 0, count: n)
        raw.withUnsafeBytes { r in stored.withUnsafeMutableBytes { DTypeConversion.convert(from: rep.type.plainDType ?? .F32, to: baseDType, count: n, src: r, dst: $0) } }
        stored.withUnsafeBytes { r in out.withUnsafeMutableBytes { DTypeConversion.convert(from: baseDType, to: .F32, count: n, src: r, dst: $0) } }
        return out
    }

    /// The merged float32 values of one weight: dequantized, rounded to the quant state's dtype,
    /// plus the delta.
    func merged(_ f: BnBDequantizer.FourBit, _ update: LoRAMerger.Update) throws -> [Float] {
        let absmax = try bnb.expandedAbsmax(f)
        let codec = try bnb.codec(f)
        let packed = try model.read(model.tensors[f.weight])
        var w = [Float](repeating: 0, count: f.count)
        packed.withUnsafeBytes { p in
            absmax.withUnsafeBufferPointer { a in w.withUnsafeMutableBufferPointer { codec.dequantize(p, absmax: a, count: f.count, into: $0) } }
        }
        if f.dtype != .F32 {
            var half = [UInt8](repeating: 0, count: f.count * 2)
            w.withUnsafeBytes { src in half.withUnsafeMutableBytes { DTypeConversion.convert(from: .F32, to: f.dtype, count: f.count, src: src, dst: $0) } }
            half.withUnsafeBytes { src in w.withUnsafeMutableBytes { DTypeConversion.convert(from: f.dtype, to: .F32, count: f.count, src: src, dst: $0) } }
        }
        let (a, b, rank, scaling, round) = try merger.factors(update, baseDType: .F32)
        w.withUnsafeMutableBufferPointer { wp in
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    LoRADelta.add(to: wp, rows: f.shape[0], cols: f.shape[1], a: ap, b: bp, rank: rank, scaling: scaling,
                                  fanInFanOut: merger.fanInFanOut, roundDelta: round, threads: merger.options.threads)
                }
            }
        }
        try applyDoRA(&w, update, rows: f.shape[0], cols: f.shape[1])
        for v in w where !v.isFinite {
            throw FTQError.invalid("merge.non-finite", file: model.path, "merging gives non-finite values in \"\(model.tensors[f.weight].name)\"")
        }
        return w
    }

    /// DoRA (PEFT's DoraLinearVariant.merge_safe on a bitsandbytes layer): each row of W + delta
    /// scaled by magnitude / its norm, as for a full-precision base (formats/lora-merge.md, "DoRA").
    func applyDoRA(_ w: inout [Float], _ update: LoRAMerger.Update, rows: Int, cols: Int) throws {
        guard let mag = update[0].module.magnitude else { return }
        let m = try merger.load(update[0].adapter, mag)
        w.withUnsafeMutableBufferPointer { wp in
            m.withUnsafeBufferPointer { DoRA.scaleRows(wp, rows: rows, cols: cols, magnitude: $0) }
        }
    }

    /// What a 4-bit weight's merged values are quantized from, and its new quant state's dtype. A
    /// LoRA merge quantizes the float32 sum (dtype float32); a DoRA merge rounds its result to the
    /// dequantized weight's dtype first (PEFT casts it back to that dtype), which the new quant
    /// state then names.
    func quantizationInput(_ w: [Float], _ f: BnBDequantizer.FourBit, _ update: LoRAMerger.Update) -> (values: [Float], dtype: String) {
        guard update[0].module.magnitude != nil, f.dtype != .F32 else { return (w, "float32") }
        var half = [UInt8](repeating: 0, count: f.count * 2)
        var out = [Float](repeating: 0, count: f.count)
        w.withUnsafeBytes { src in half.withUnsafeMutableBytes { DTypeConversion.convert(from: .F32, to: f.dtype, count: f.count, src: src, dst: $0) } }
        half.withUnsafeBytes { src in out.withUnsafeMutableBytes { DTypeConversion.convert(from: f.dtype, to: .F32, count: f.count, src: src, dst: $0) } }
        return (out, f.dtype == .BF16 ? "bfloat16" : "float16")
    }

    /// The merged float32 values of an int8 weight: float32(q * SCB) * float32(1/127), plus the
    /// delta (PEFT adds to bitsandbytes' float32 dequantization).
    func mergedInt8(_ w8: BnBDequantizer.Int8Weight, _ update: LoRAMerger.Update) throws -> [Float] {
        let t = model.tensors[w8.weight]
        let rows = t.shape[0], cols = t.shape[1]
        let scb = try bnb.floats(w8.scb)
        let q = try model.read(t)
        var w = [Float](repeating: 0, count: rows * cols)
        q.withUnsafeBytes { raw in
            let qq = raw.bindMemory(to: Int8.self)
            w.withUnsafeMutableBufferPointer { wp in
                for r in 0..<rows {
                    LLMInt8.dequantizeRow(UnsafeBufferPointer(rebasing: qq[(r * cols)..<((r + 1) * cols)]), scb: scb[r],
                                          into: UnsafeMutableBufferPointer(rebasing: wp[(r * cols)..<((r + 1) * cols)]))
                }
            }
        }
        let (a, b, rank, scaling, round) = try merger.factors(update, baseDType: .F32)
        w.withUnsafeMutableBufferPointer { wp in
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    LoRADelta.add(to: wp, rows: rows, cols: cols, a: ap, b: bp, rank: rank, scaling: scaling,
                                  fanInFanOut: merger.fanInFanOut, roundDelta: round, threads: merger.options.threads)
                }
            }
        }
        try applyDoRA(&w, update, rows: rows, cols: cols)
        return w
    }

    /// LLM.int8 of merged values: rounded to float16 (refused beyond its range), then row-wise.
    func quantizeInt8(_ w: [Float], rows: Int, cols: Int, name: String) throws -> (cb: [Int8], scb: [Float]) {
        var cb = [Int8](repeating: 0, count: rows * cols), scb = [Float](repeating: 0, count: rows)
        var half = [Float](repeating: 0, count: cols)
        for r in 0..<rows {
            for i in 0..<cols {
                half[i] = BnBQuantizer.toHalf(w[r * cols + i])
                if !half[i].isFinite {
                    throw FTQError.invalid("merge.non-finite", file: model.path, "merging gives values beyond float16's range in \"\(name)\"")
                }
            }
            scb[r] = half.withUnsafeBufferPointer { h in cb.withUnsafeMutableBufferPointer { LLMInt8.quantizeRow(h, into: UnsafeMutableBufferPointer(rebasing: $0[(r * cols)..<((r + 1) * cols)])) } }
        }
        return (cb, scb)
    }

    /// First pass: every merged weight's absmax, double quantization and quant state.
    func smallParts(_ plan: [Int: (BnBDequantizer.FourBit, LoRAMerger.Update)]) throws -> [Int: Small] {
        var out: [Int: Small] = [:]
        for (k, (f, update)) in plan {
            let (w, dtype) = quantizationInput(try merged(f, update), f, update)
            let codec = BnB4BitCodec(type: f.type, blocksize: f.blocksize)
            var absmax = [Float](repeating: 0, count: codec.blocks(f.count))
            _ = w.withUnsafeBufferPointer { x in absmax.withUnsafeMutableBufferPointer { codec.absmax(x, isEnd: true, into: $0) } }
            let dq = f.nestedAbsmax != nil ? absmax.withUnsafeBufferPointer { BnBDoubleQuant(compressing: $0) } : nil
            var s = "{\"quant_type\": \"\(f.type.rawValue)\", \"blocksize\": \(f.blocksize), \"dtype\": \"\(dtype)\", "
            s += "\"shape\": [" + f.shape.map(String.init).joined(separator: ", ") + "]"
            if let dq { s += ", \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": \(BnBQuantizer.pythonRepr(Double(dq.offset)))" }
            out[k] = Small(absmax: absmax, dq: dq, json: Array((s + "}").utf8))
        }
        return out
    }

    /// `--dequantize`: the whole model in full precision (BnBDequantizer's output, the merged
    /// weights' ideal float32 values rounded to the output dtype), config.json without its
    /// quantization_config.
    func runDequantized(to target: OutputTarget) throws -> [WrittenFile] {
        var d = BnBDequantizer(model: model, options: merger.options)
        let plan4 = try plan(), plan8 = try int8Plan()
        for (k, (f, update)) in plan4 {
            d.replacements[k] = { try merged(f, update) }
        }
        for (k, (w8, update)) in plan8 {
            d.replacements[k] = { try mergedInt8(w8, update) }
        }
        for (k, (j, rep)) in try replacements(updated: Set(plan4.keys).union(plan8.keys)) {
            let dtype = model.tensors[k].type.plainDType ?? .F32
            d.replacements[k] = { try replacementValues(j, rep, baseDType: dtype) }
        }
        return try d.run(to: target)
    }

    func run(to target: OutputTarget) throws -> [WrittenFile] {
        let conv = Converter(model: merger.model, options: merger.options)
        try conv.refuseInputAsOutput(target.path)
        let plan = try plan()
        let small = try smallParts(plan)
        let int8 = try int8Plan()
        // int8: the new SCB (small, and first in the file) from a first pass.
        var int8SCB: [Int: [Float]] = [:]
        for (k, (w8, update)) in int8 {
            let t = model.tensors[k]
            int8SCB[k] = try quantizeInt8(try mergedInt8(w8, update), rows: t.shape[0], cols: t.shape[1], name: t.name).scb
        }
        let replaced = try replacements(updated: Set(plan.keys).union(int8.keys))
        // Output tensor name -> what replaces the base's bytes.
        enum Part { case packed(Int), absmax(Int), nested(Int), state(Int), int8Weight(Int), scb(Int), saved(Int) }
        var parts: [ExactName: Part] = [:]
        for k in replaced.keys { parts[ExactName(model.tensors[k].name)] = .saved(k) }
        for (k, (w8, _)) in int8 {
            parts[ExactName(model.tensors[k].name)] = .int8Weight(k)
            parts[ExactName(model.tensors[w8.scb].name)] = .scb(k)
        }
        for (k, (f, _)) in plan {
            parts[ExactName(model.tensors[k].name)] = .packed(k)
            parts[ExactName(model.tensors[f.absmax].name)] = .absmax(k)
            if let n = f.nestedAbsmax { parts[ExactName(model.tensors[n].name)] = .nested(k) }
            let p = model.tensors[k].name + ".quant_state.bitsandbytes__" + f.type.rawValue
            parts[ExactName(p)] = .state(k)
        }
        func bytes(_ part: Part) throws -> [UInt8] {
            switch part {
            case let .packed(k):
                let (f, update) = plan[k]!
                let w = try merged(f, update)
                let input = quantizationInput(w, f, update).values
                let codec = BnB4BitCodec(type: f.type, blocksize: f.blocksize)
                var packed = [UInt8](repeating: 0, count: BnB4BitCodec.packedBytes(f.count))
                var absmax = [Float](repeating: 0, count: codec.blocks(f.count))
                input.withUnsafeBufferPointer { x in
                    packed.withUnsafeMutableBytes { p in absmax.withUnsafeMutableBufferPointer { codec.quantize(x, isEnd: true, packed: p, absmax: $0) } }
                }
                if let report = merger.report {
                    // What requantizing costs: the output's values against the ideal float32 merge.
                    let stored = small[k]!.dq?.expand() ?? small[k]!.absmax
                    var y = [Float](repeating: 0, count: f.count)
                    packed.withUnsafeBytes { p in stored.withUnsafeBufferPointer { a in y.withUnsafeMutableBufferPointer { codec.dequantize(p, absmax: a, count: f.count, into: $0) } } }
                    var e = ErrorStats()
                    w.withUnsafeBufferPointer { x in y.withUnsafeBufferPointer { e.add(x, $0) } }
                    report.add(name: model.tensors[k].name, shape: f.shape, typeA: "F32", typeB: f.type.rawValue.uppercased(), stats: e)
                }
                return packed
            case let .absmax(k):
                let s = small[k]!
                return s.dq?.q ?? BnBQuantizer.littleEndian(s.absmax)
            case let .nested(k):
                return BnBQuantizer.littleEndian(small[k]!.dq!.nestedAbsmax)
            case let .state(k):
                return small[k]!.json
            case let .scb(k):
                return BnBQuantizer.littleEndian(int8SCB[k]!)
            case .saved:
                preconditionFailure("modules_to_save copies are streamed, not built")
            case let .int8Weight(k):
                let (w8, update) = int8[k]!
                let t = model.tensors[k]
                let w = try mergedInt8(w8, update)
                let (cb, scb) = try quantizeInt8(w, rows: t.shape[0], cols: t.shape[1], name: t.name)
                if let report = merger.report {
                    var y = [Float](repeating: 0, count: w.count)
                    let cols = t.shape[1]
                    cb.withUnsafeBufferPointer { c in
                        y.withUnsafeMutableBufferPointer { yp in
                            for r in 0..<t.shape[0] {
                                LLMInt8.dequantizeRow(UnsafeBufferPointer(rebasing: c[(r * cols)..<((r + 1) * cols)]), scb: scb[r],
                                                      into: UnsafeMutableBufferPointer(rebasing: yp[(r * cols)..<((r + 1) * cols)]))
                            }
                        }
                    }
                    var e = ErrorStats()
                    w.withUnsafeBufferPointer { x in y.withUnsafeBufferPointer { e.add(x, $0) } }
                    report.add(name: t.name, shape: t.shape, typeA: "F32", typeB: "INT8", stats: e)
                }
                return cb.map { UInt8(bitPattern: $0) }
            }
        }
        let specs = try model.tensors.map { t -> (name: String, dtype: DType, shape: [Int]) in
            guard let d = t.type.plainDType else {
                throw FTQError.invalid("merge.base-dtype", file: model.file(of: t).path, "tensor \"\(t.name)\" is \(t.type.name)")
            }
            if case let .state(k)? = parts[ExactName(t.name)] { return (t.name, d, [small[k]!.json.count]) }
            return (t.name, d, t.shape)
        }
        let buffers = ChunkBuffers()
        let meta = conv.sourceSafetensorsMetadata() ?? [("format", "pt")]
        func write(_ indices: [Int], to path: String, name: String?, progress: Progress?) throws -> (OutputFile, WrittenFile) {
            try conv.streamSafetensors(indices.map { specs[$0] }, metadata: meta, to: path, name: name, progress: progress, label: "merge") { i, _, emit in
                let t = model.tensors[indices[i]]
                if case let .saved(k)? = parts[ExactName(t.name)] {
                    // modules_to_save: the adapter's copy, converted to the base tensor's dtype.
                    let (j, rep) = replaced[k]!
                    try Converter(model: merger.adapters[j].model, options: merger.options)
                        .copyConverted(rep, as: specs[indices[i]].dtype, to: emit, buffers: buffers)
                } else if let part = parts[ExactName(t.name)] {
                    try bytes(part).withUnsafeBytes(emit)
                } else {
                    try conv.copyData(t, to: emit, buffers: buffers)
                }
            }
        }
        switch target {
        case let .safetensorsFile(path):
            try conv.refuseExistingSidecars(of: path)
            return try conv.commitWithSidecars(try write(Array(model.tensors.indices), to: path, name: nil, progress: nil))
        case let .hfDirectory(dir, maxShardSize):
            let sizes = specs.map { s in s.dtype.byteCount(elements: s.shape.reduce(1, *)) ?? Int.max }
            let extra = try CompanionFiles.read(model) { bytes, _ in bytes }
            return try conv.writeDirectory(dir, maxShardSize: maxShardSize, names: specs.map(\.name), sizes: sizes,
                                           parameters: model.tensors.reduce(0) { $0 + $1.elementCount }, extraFiles: extra) { idx, staged, name, prog in
                try write(idx, to: staged, name: name, progress: prog)
            }
        case .gguf:
            throw FTQError.usage("usage.conflict", "ftq merge writes the base's form: a .safetensors file or a directory")
        }
    }
}
