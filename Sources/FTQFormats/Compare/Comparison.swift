import Dispatch
import FTQCore
import FTQKernels

/// One tensor present in both models, and its error figures (formats/metrics.md).
public struct TensorComparison: Sendable {
    public var name: String
    public var kind: String
    public var layer: Int?
    public var shape: [Int]
    public var typeA: String
    public var typeB: String
    public var stats: ErrorStats
}

public struct ModelComparison: Sendable {
    public var tensors: [TensorComparison]
    public var onlyInA: [String]
    public var onlyInB: [String]
}

/// `ftq compare`: every floating-point tensor of A against the tensor of the same name in B,
/// decoded a window at a time (bounded memory), in A's order.
public enum Comparison {
    /// Compares on `threads` threads, a tensor per thread at a time (each tensor's figures are
    /// computed the same way whatever the thread count, so the result does not depend on it).
    public static func compare(_ a: LogicalModel, _ b: LogicalModel, threads: Int = 1, progress: Progress? = nil) throws -> ModelComparison {
        var byName: [ExactName: LogicalModel.Tensor] = [:]
        for t in b.tensors { byName[ExactName(t.name)] = t }
        let inA = Set(a.tensors.map { ExactName($0.name) })
        var pairs: [(LogicalModel.Tensor, LogicalModel.Tensor)] = []
        var onlyInA: [String] = []
        for ta in a.tensors {
            guard let tb = byName[ExactName(ta.name)] else {
                onlyInA.append(ta.name)
                continue
            }
            guard ta.shape == tb.shape else {
                throw FTQError.invalid("compare.shape-mismatch", file: b.model.path,
                    "tensor \"\(ta.name)\" is \(ta.shape) in \(a.model.path) but \(tb.shape) here")
            }
            pairs.append((ta, tb))
        }
        let work = CompareWork(a: a, b: b, pairs: pairs, progress: progress)
        let n = max(1, min(threads, pairs.count))
        if n == 1 { work.worker() } else { DispatchQueue.concurrentPerform(iterations: n) { _ in work.worker() } }
        if let e = work.error { throw e }
        let out = pairs.enumerated().map { k, p in
            TensorComparison(name: p.0.name, kind: kind(of: p.0.name, gguf: a.model.format == .gguf), layer: layer(of: p.0.name),
                             shape: p.0.shape, typeA: p.0.typeName, typeB: p.1.typeName, stats: work.results[k])
        }
        let onlyInB = b.tensors.map(\.name).filter { !inA.contains(ExactName($0)) }
        return ModelComparison(tensors: out, onlyInA: onlyInA, onlyInB: onlyInB)
    }

    /// The statistics of one pair, a window at a time.
    static func stats(_ a: LogicalModel, _ ta: LogicalModel.Tensor, _ b: LogicalModel, _ tb: LogicalModel.Tensor,
                      wa: UnsafeMutableBufferPointer<Float>, wb: UnsafeMutableBufferPointer<Float>, progress: Progress?) throws -> ErrorStats {
        let da = try a.decoder(ta), db = try b.decoder(tb)
        var stats = ErrorStats()
        var start = 0
        while start < ta.count {
            let n = min(LogicalModel.window, ta.count - start)
            try da.decode(start: start, into: UnsafeMutableBufferPointer(rebasing: wa[0..<n]))
            try db.decode(start: start, into: UnsafeMutableBufferPointer(rebasing: wb[0..<n]))
            stats.add(UnsafeBufferPointer(rebasing: wa[0..<n]), UnsafeBufferPointer(rebasing: wb[0..<n]))
            progress?.advance(n * 8)
            start += n
        }
        return stats
    }

    /// The kind of a tensor from its name (formats/metrics.md, "Kinds and totals").
    public static func kind(of name: String, gguf: Bool = false) -> String {
        let parts = name.split(separator: ".").map(String.init)
        let has = { (names: [String]) in parts.contains(where: names.contains) }
        if has(["qkv_proj", "attn_qkv", "c_attn", "query_key_value", "Wqkv"]) { return "attn_qkv" }
        if has(["q_proj", "attn_q", "query"]) { return "attn_q" }
        if has(["k_proj", "attn_k", "key"]) { return "attn_k" }
        if has(["v_proj", "attn_v", "value"]) { return "attn_v" }
        if has(["o_proj", "attn_output", "out_proj"]) { return "attn_o" }
        if parts.contains("dense") && parts.contains(where: { $0.hasBytePrefix("attention") || $0 == "attn" || $0 == "self_attn" }) { return "attn_o" }
        if parts.contains("c_proj") && parts.contains("attn") { return "attn_o" }
        if has(["gate_proj", "ffn_gate", "w1"]) { return "mlp_gate" }
        if has(["up_proj", "ffn_up", "w3", "c_fc", "fc1", "dense_h_to_4h"]) { return "mlp_up" }
        if has(["down_proj", "ffn_down", "w2", "fc2", "dense_4h_to_h"]) { return "mlp_down" }
        if parts.contains("c_proj") && parts.contains("mlp") { return "mlp_down" }
        if has(["embed_tokens", "wte", "wpe", "token_embd", "word_embeddings", "embeddings", "position_embeddings",
                "token_type_embeddings", "tok_embeddings"]) { return "embedding" }
        if parts.contains("lm_head") || name == "output.weight" { return "output" }
        if parts.contains(where: { $0.hasByteSuffix("norm") || $0 == "ln_f" || $0 == "ln_1" || $0 == "ln_2" }) { return "norm" }
        return "other"
    }

    /// The layer index: the first integer component after `layers`, `h`, `blk` or `block`.
    public static func layer(of name: String) -> Int? {
        let parts = name.split(separator: ".").map(String.init)
        for (i, p) in parts.enumerated() where ["layers", "h", "blk", "block", "blocks"].contains(p) && i + 1 < parts.count {
            if let n = Int(parts[i + 1]), n >= 0 { return n }
        }
        return nil
    }
}

/// Tensors handed out to worker threads one at a time; results by position.
final class CompareWork: @unchecked Sendable {
    let a: LogicalModel, b: LogicalModel
    let pairs: [(LogicalModel.Tensor, LogicalModel.Tensor)]
    let progress: Progress?
    var results: [ErrorStats]
    var error: Error?
    private var next = 0
    private let lock = NSLockLike()

    init(a: LogicalModel, b: LogicalModel, pairs: [(LogicalModel.Tensor, LogicalModel.Tensor)], progress: Progress?) {
        self.a = a
        self.b = b
        self.pairs = pairs
        self.progress = progress
        results = Array(repeating: ErrorStats(), count: pairs.count)
    }

    func worker() {
        let wa = UnsafeMutableBufferPointer<Float>.allocate(capacity: LogicalModel.window)
        let wb = UnsafeMutableBufferPointer<Float>.allocate(capacity: LogicalModel.window)
        defer { wa.deallocate(); wb.deallocate() }
        while true {
            let k: Int? = lock.withLock {
                guard error == nil, next < pairs.count else { return nil }
                next += 1
                return next - 1
            }
            guard let k else { return }
            do {
                let s = try Comparison.stats(a, pairs[k].0, b, pairs[k].1, wa: wa, wb: wb, progress: nil)
                lock.withLock { results[k] = s; progress?.advance(pairs[k].0.count * 8) }
            } catch {
                lock.withLock { if self.error == nil { self.error = error } }
            }
        }
    }
}
