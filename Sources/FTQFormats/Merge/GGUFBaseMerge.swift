import FTQCore
import FTQKernels

/// Merging PEFT LoRA adapters into a GGUF base (formats/lora-merge.md, "GGUF bases"): PEFT's
/// module names are mapped to llama.cpp's tensor names; for the llama architecture the q and k
/// rows are in llama.cpp's per-head order (convert_hf_to_gguf permutes them), so the delta is
/// added in Hugging Face order: the rows are unpermuted, the delta added as for a safetensors
/// base, and the rows permuted back.
struct GGUFBaseMerge: @unchecked Sendable {
    let merger: LoRAMerger
    var model: Model { merger.model }

    /// `model.layers.N.self_attn.q_proj` -> `blk.N.attn_q.weight` (nil if not a Llama-style name).
    static func ggufName(_ module: String) -> String? {
        LlamaTensorNames.ggufModule(module).map { $0 + ".weight" }
    }

    func metadataInt(_ key: String) -> Int? {
        guard case let .gguf(v)? = model.metadata.first(where: { $0.0 == key })?.1 else { return nil }
        switch v {
        case let .u32(x): return Int(x)
        case let .i32(x): return Int(x)
        case let .u64(x): return Int(exactly: x)
        case let .i64(x): return Int(x)
        case let .u16(x): return Int(x)
        default: return nil
        }
    }

    var architecture: String? {
        if case let .gguf(.string(s))? = model.metadata.first(where: { $0.0 == "general.architecture" })?.1 { return s }
        return nil
    }

    func run(to path: String) throws -> [WrittenFile] {
        var index: [ExactName: Int] = [:]
        for (k, t) in model.tensors.enumerated() { index[ExactName(t.name)] = k }
        var updates: [Int: (LoRAMerger.Update, heads: Int?)] = [:]
        let llama = architecture == "llama"
        let heads = metadataInt("llama.attention.head_count"), kvHeads = metadataInt("llama.attention.head_count_kv") ?? heads
        for (j, adapter) in merger.adapters.enumerated() {
            for m in adapter.modules {
                // A GGUF adapter names GGUF tensors, its q/k rows already in llama.cpp's order.
                guard let name = adapter.isGGUF ? m.name + ".weight" : Self.ggufName(m.name), let k = index[ExactName(name)] else {
                    throw FTQError.invalid("merge.missing-target", file: model.path,
                        "the adapter targets module \"\(m.name)\", which has no GGUF tensor here (llama.cpp names: blk.N.attn_q.weight, ...)")
                }
                let t = model.tensors[k]
                if let d = t.type.plainDType {
                    guard d == .F32 || d == .F16 || d == .BF16 else {
                        throw FTQError.invalid("merge.base-dtype", file: model.file(of: t).path,
                            "tensor \"\(t.name)\" is \(t.type.name); ftq merges into F32, F16, BF16 and quantized GGUF tensors")
                    }
                } else if case let .ggml(g) = t.type {
                    guard GGMLDequantizer.kernel(for: g) != nil, merger.dequantize || GGMLQuantizeType(rawValue: g.name) != nil else {
                        throw FTQError.invalid("merge.base-dtype", file: model.file(of: t).path,
                            "tensor \"\(t.name)\" is \(g.name); ftq can quantize Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K and Q6_K again (use --dequantize to write it in full precision)")
                    }
                }
                try merger.checkShape(m, of: t.name, t.shape, file: model.file(of: t).path)
                var h: Int? = nil
                let permuted = llama && !adapter.isGGUF
                if permuted && name.hasByteSuffix(".attn_q.weight") { h = heads }
                if permuted && name.hasByteSuffix(".attn_k.weight") { h = kvHeads }
                if permuted, name.hasByteSuffix(".attn_q.weight") || name.hasByteSuffix(".attn_k.weight") {
                    guard let hh = h, hh > 0, t.shape[0] % (2 * hh) == 0 else {
                        throw FTQError.invalid("merge.gguf-heads", file: model.path,
                            "cannot undo llama.cpp's row order of \"\(name)\": llama.attention.head_count(_kv) is missing or does not divide its rows")
                    }
                }
                var u = updates[k]?.0 ?? []
                u.append((j, m))
                updates[k] = (u, h)
            }
        }
        let replaced = try replacementPlan(index: index, updates: updates, llama: llama, heads: heads, kvHeads: kvHeads)
        var options = merger.options
        options.dequantize = merger.dequantize
        let plan = Plan(merge: self, updates: updates, replaced: replaced)
        options.replacement = { k in try plan.bytes(k) }
        return try Converter(model: model, options: options).run(to: .gguf(path))
    }

    /// modules_to_save: GGUF tensor index -> (adapter index, the adapter's copy, the heads of a q/k
    /// copy to put in llama.cpp's row order). The copy of `NAME.weight` replaces the tensor named
    /// as llama.cpp names NAME (`lm_head.weight` -> `output.weight`, ...). With several weighted
    /// adapters no copy is used (LoRAMerger.checkWeightedReplacements), as in PEFT.
    func replacementPlan(index: [ExactName: Int], updates: [Int: (LoRAMerger.Update, heads: Int?)], llama: Bool,
                         heads: Int?, kvHeads: Int?) throws -> [Int: (adapter: Int, tensor: TensorEntry, heads: Int?)] {
        guard merger.weights == nil else { return [:] }
        var out: [Int: (adapter: Int, tensor: TensorEntry, heads: Int?)] = [:]
        for (j, adapter) in merger.adapters.enumerated() {
            for (name, rep) in adapter.replacements {
                guard let g = LlamaTensorNames.ggufTensor(name), let k = index[ExactName(g)] else {
                    throw FTQError.invalid("merge.missing-target", file: model.path,
                        "the adapter \(adapter.path) saves \"\(name)\" (modules_to_save), which has no GGUF tensor here (llama.cpp names: output.weight, token_embd.weight, ...)")
                }
                let t = model.tensors[k]
                guard t.shape == rep.shape else {
                    throw FTQError.invalid("merge.shape-mismatch", file: model.file(of: t).path,
                        "tensor \"\(g)\" is \(t.type.name) \(t.shape); the adapter's copy of \"\(name)\" (modules_to_save) is \(rep.shape)")
                }
                if updates[k] != nil || out[k] != nil {
                    throw FTQError.invalid("merge.adapter-config", file: adapter.configPath,
                        "tensor \"\(g)\" is both replaced (modules_to_save) and updated, or replaced twice; ftq cannot combine them")
                }
                if t.type.plainDType == nil, case let .ggml(q) = t.type, !merger.dequantize && GGMLQuantizeType(rawValue: q.name) == nil {
                    throw FTQError.invalid("merge.base-dtype", file: model.file(of: t).path,
                        "tensor \"\(g)\" is \(q.name); ftq can quantize Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K and Q6_K again (use --dequantize to write it in full precision)")
                }
                var h: Int? = nil
                if llama && g.hasByteSuffix(".attn_q.weight") { h = heads }
                if llama && g.hasByteSuffix(".attn_k.weight") { h = kvHeads }
                if llama, g.hasByteSuffix(".attn_q.weight") || g.hasByteSuffix(".attn_k.weight") {
                    guard let hh = h, hh > 0, t.shape.count == 2, t.shape[0] % (2 * hh) == 0 else {
                        throw FTQError.invalid("merge.gguf-heads", file: model.path,
                            "cannot put the rows of \"\(g)\" in llama.cpp's order: llama.attention.head_count(_kv) is missing or does not divide its rows")
                    }
                }
                out[k] = (j, rep, h)
            }
        }
        return out
    }

    /// A modules_to_save copy written in tensor `k`'s form: rounded to its dtype (as loading the
    /// copy into the module does), or quantized with its type (the error reported), or with
    /// --dequantize as F32 or --dtype; q/k rows permuted into llama.cpp's order.
    func replacementBytes(_ k: Int, adapter j: Int, _ rep: TensorEntry, heads: Int?) throws -> [UInt8] {
        let t = model.tensors[k]
        var x = try merger.load(j, rep)
        if let heads { x = LlamaTensorNames.permuteToGGUF(x, rows: t.shape[0], cols: t.shape[1], heads: heads) }
        return try encode(x, k)
    }

    /// A tensor's values as float32 (quantized blocks decoded).
    func values(_ t: TensorEntry) throws -> [Float] {
        guard case let .ggml(g) = t.type, t.type.plainDType == nil else { return try merger.floats(t) }
        let raw = try model.read(t)
        var out = [Float](repeating: 0, count: t.elementCount)
        raw.withUnsafeBytes { r in out.withUnsafeMutableBufferPointer { GGMLDequantizer.kernel(for: g)!(r, $0) } }
        return out
    }

    func mergedBytes(_ k: Int, _ update: LoRAMerger.Update, heads: Int?) throws -> [UInt8] {
        let t = model.tensors[k]
        // Plain tensors keep their dtype; quantized ones are quantized again (or, with
        // --dequantize, written as --dtype or F32 like every other quantized tensor).
        let plain = t.type.plainDType
        let rows = t.shape[0], cols = t.shape[1]
        let stored = try values(t)
        // Hugging Face row order (llama.cpp permuted q and k rows per head).
        var w = heads.map { LlamaTensorNames.permuteToHF(stored, rows: rows, cols: cols, heads: $0) } ?? stored
        let (a, b, rank, scaling, round) = try merger.factors(update, baseDType: plain ?? .F32)
        w.withUnsafeMutableBufferPointer { wp in
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    LoRADelta.add(to: wp, rows: rows, cols: cols, a: ap, b: bp, rank: rank, scaling: scaling,
                                  fanInFanOut: merger.fanInFanOut, roundDelta: round, threads: merger.options.threads)
                }
            }
        }
        if let mag = update[0].module.magnitude {
            // DoRA: each output row of W + delta scaled to its magnitude (Hugging Face row order).
            let m = try merger.load(update[0].adapter, mag)
            w.withUnsafeMutableBufferPointer { wp in
                m.withUnsafeBufferPointer { DoRA.scale(wp, rows: rows, cols: cols, magnitude: $0, fanInFanOut: merger.fanInFanOut) }
            }
        }
        return try encode(heads.map { LlamaTensorNames.permuteToGGUF(w, rows: rows, cols: cols, heads: $0) } ?? w, k)
    }

    /// Float32 values of tensor `k` written in its form: a plain tensor's dtype (or --dtype with
    /// --dequantize), F32 (or --dtype) for a quantized one with --dequantize, else quantized again
    /// with its own type, the error that adds being reported.
    func encode(_ out: [Float], _ k: Int) throws -> [UInt8] {
        let t = model.tensors[k]
        let plain = t.type.plainDType
        if let plain, !(merger.dequantize && merger.options.dtype != nil) {
            var bytes = [UInt8](repeating: 0, count: t.nbytes)
            out.withUnsafeBytes { src in bytes.withUnsafeMutableBytes { DTypeConversion.convert(from: .F32, to: plain, count: out.count, src: src, dst: $0) } }
            return bytes
        }
        if merger.dequantize {
            let target = merger.options.dtype ?? .F32
            var bytes = [UInt8](repeating: 0, count: out.count * target.bits / 8)
            out.withUnsafeBytes { src in bytes.withUnsafeMutableBytes { DTypeConversion.convert(from: .F32, to: target, count: out.count, src: src, dst: $0) } }
            return bytes
        }
        // Quantized again with the tensor's own type; the error that adds is reported.
        guard case let .ggml(g) = t.type, let q = GGMLQuantizeType(rawValue: g.name) else {
            throw FTQError.invalid("merge.base-dtype", file: model.file(of: t).path, "tensor \"\(t.name)\" is \(t.type.name), which ftq cannot quantize again")
        }
        var bytes = [UInt8](repeating: 0, count: t.nbytes)
        out.withUnsafeBufferPointer { x in bytes.withUnsafeMutableBytes { q.quantize(x, into: $0) } }
        if let report = merger.report {
            var y = [Float](repeating: 0, count: out.count)
            bytes.withUnsafeBytes { r in y.withUnsafeMutableBufferPointer { GGMLDequantizer.kernel(for: g)!(r, $0) } }
            var e = ErrorStats()
            out.withUnsafeBufferPointer { x in y.withUnsafeBufferPointer { e.add(x, $0) } }
            report.add(name: t.name, shape: t.shape, typeA: "F32", typeB: g.name, stats: e)
        }
        return bytes
    }
}

/// The merged bytes of each updated tensor, for the GGUF writer.
final class Plan: @unchecked Sendable {
    let merge: GGUFBaseMerge
    let updates: [Int: (LoRAMerger.Update, heads: Int?)]
    let replaced: [Int: (adapter: Int, tensor: TensorEntry, heads: Int?)]
    init(merge: GGUFBaseMerge, updates: [Int: (LoRAMerger.Update, heads: Int?)], replaced: [Int: (adapter: Int, tensor: TensorEntry, heads: Int?)]) {
        self.merge = merge
        self.updates = updates
        self.replaced = replaced
    }
    func bytes(_ k: Int) throws -> [UInt8]? {
        if let (j, rep, heads) = replaced[k] { return try merge.replacementBytes(k, adapter: j, rep, heads: heads) }
        guard let (update, heads) = updates[k] else { return nil }
        return try merge.mergedBytes(k, update, heads: heads)
    }
}
