import Dispatch

/// The LoRA update PEFT's merge_and_unload adds to a weight on the CPU
/// (formats/lora-merge.md, "Delta"): delta = (B @ A) * scaling in float32, each element of
/// B @ A a sequential fused multiply-add over the rank (k = 0 ..< r), which is what torch's
/// float32 matrix product gives on the CPU for these shapes; then W + delta in float32.
public enum LoRADelta {
    /// Adds the delta to `w`, float32 values of a weight of `rows` x `cols` in its stored layout.
    /// `a` is lora_A [r, inFeatures], `b` is lora_B [outFeatures, r]. Without `fanInFanOut` the
    /// weight is [out, in]; with it (GPT-2's Conv1D) it is [in, out] and the delta is transposed.
    /// `roundDelta` rounds each delta before the addition (PEFT casts the delta of adapter
    /// weights stored in the base's 16-bit dtype back to that dtype).
    public static func add(to w: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int,
                           a: UnsafeBufferPointer<Float>, b: UnsafeBufferPointer<Float>, rank r: Int,
                           scaling: Float, fanInFanOut: Bool, roundDelta: (@Sendable (Float) -> Float)? = nil, threads: Int = 1) {
        let outF = fanInFanOut ? cols : rows, inF = fanInFanOut ? rows : cols
        precondition(w.count == rows * cols && a.count == r * inF && b.count == outF * r)
        let job = DeltaJob(w: w, cols: cols, a: a, b: b, r: r, inF: inF, outF: outF, scaling: scaling,
                           fanInFanOut: fanInFanOut, roundDelta: roundDelta, parts: max(1, min(threads, outF / 64)))
        if job.parts == 1 { job.run(0) } else { DispatchQueue.concurrentPerform(iterations: job.parts) { job.run($0) } }
    }
}

/// Output rows of a delta split into `parts` ranges, one per thread; every element is computed
/// the same way whatever the split.
struct DeltaJob: @unchecked Sendable {
    let w: UnsafeMutableBufferPointer<Float>
    let cols: Int
    let a: UnsafeBufferPointer<Float>, b: UnsafeBufferPointer<Float>
    let r: Int, inF: Int, outF: Int
    let scaling: Float
    let fanInFanOut: Bool
    let roundDelta: (@Sendable (Float) -> Float)?
    let parts: Int

    func run(_ p: Int) {
        let per = (outF + parts - 1) / parts
        // One output row at a time: its accumulators for every column, each updated over k in
        // order (the same operations per element as a k-inner loop; contiguous rows of A).
        let acc = UnsafeMutableBufferPointer<Float>.allocate(capacity: inF)
        defer { acc.deallocate() }
        let ap = a.baseAddress!
        for o in (p * per)..<min(outF, (p + 1) * per) {
            acc.initialize(repeating: 0)
            for k in 0..<r {
                let bk = b[o * r + k]
                let row = ap + k * inF
                for i in 0..<inF { acc[i] = acc[i].addingProduct(bk, row[i]) }
            }
            for i in 0..<inF {
                let idx = fanInFanOut ? i * cols + o : o * cols + i
                let delta = acc[i] * scaling
                w[idx] = w[idx] + (roundDelta?(delta) ?? delta)
            }
        }
    }
}
