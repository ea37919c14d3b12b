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
    /// LoRADeltaRow.smallestMagnitude of A, found once for every row.
    let aSmallest: Float

    init(w: UnsafeMutableBufferPointer<Float>, cols: Int, a: UnsafeBufferPointer<Float>, b: UnsafeBufferPointer<Float>,
         r: Int, inF: Int, outF: Int, scaling: Float, fanInFanOut: Bool, roundDelta: (@Sendable (Float) -> Float)?, parts: Int) {
        self.w = w
        self.cols = cols
        self.a = a
        self.b = b
        self.r = r
        self.inF = inF
        self.outF = outF
        self.scaling = scaling
        self.fanInFanOut = fanInFanOut
        self.roundDelta = roundDelta
        self.parts = parts
        aSmallest = a.isEmpty ? .infinity : LoRADeltaRow.smallestMagnitude(a.baseAddress!, a.count)
    }

    func run(_ p: Int) {
        let per = (outF + parts - 1) / parts
        runRows((p * per)..<min(outF, (p + 1) * per))
    }

    func runRows(_ range: Range<Int>) {
        guard !range.isEmpty else { return }
        // One output row at a time: its accumulators for every column (LoRADeltaRow, the same
        // operations per element as a k-inner loop), then scaled and added.
        let acc = UnsafeMutableBufferPointer<Float>.allocate(capacity: inF)
        defer { acc.deallocate() }
        let ap = a.baseAddress!, bp = b.baseAddress!, wp = w.baseAddress!, cp = acc.baseAddress!
        for o in range {
            LoRADeltaRow.compute(b: bp + o * r, a: ap, rank: r, columns: inF, into: cp, aSmallest: aSmallest)
            if fanInFanOut || roundDelta != nil {
                for i in 0..<inF {
                    let idx = fanInFanOut ? i * cols + o : o * cols + i
                    let delta = acc[i] * scaling
                    w[idx] = w[idx] + (roundDelta?(delta) ?? delta)
                }
            } else {
                Self.addScaled(cp, scaling, to: wp + o * cols, count: inF)
            }
        }
    }

    /// dst[i] = dst[i] + acc[i] * scaling, each operation rounded to float32 (no fused
    /// multiply-add), as the scalar loop does.
    static func addScaled(_ acc: UnsafePointer<Float>, _ scaling: Float, to dst: UnsafeMutablePointer<Float>, count n: Int) {
        typealias V = SIMD8<Float>
        let s = V(repeating: scaling)
        let pa = UnsafeRawPointer(acc), pd = UnsafeMutableRawPointer(dst)
        var i = 0
        while i + 8 <= n {
            let d = pa.loadUnaligned(fromByteOffset: i * 4, as: V.self) * s
            pd.storeBytes(of: pd.loadUnaligned(fromByteOffset: i * 4, as: V.self) + d, toByteOffset: i * 4, as: V.self)
            i += 8
        }
        while i < n {
            let d = acc[i] * scaling
            dst[i] = dst[i] + d
            i += 1
        }
    }
}

extension LoRADelta {
    /// ``add(to:rows:cols:a:b:rank:scaling:fanInFanOut:roundDelta:threads:)`` for a weight
    /// [out, in] (no fan_in_fan_out), computed by `threads` workers in blocks of `blockRows`
    /// rows while the calling thread receives each block, in order, as soon as it is done
    /// (`consume(rows)`): it can convert and write a block while later ones are computed. Every
    /// element gets the same bits as with `add`. Returns once every worker has stopped, also
    /// when `consume` throws.
    public static func addStreaming(to w: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int,
                                    a: UnsafeBufferPointer<Float>, b: UnsafeBufferPointer<Float>, rank r: Int,
                                    scaling: Float, roundDelta: (@Sendable (Float) -> Float)? = nil, threads: Int, blockRows: Int,
                                    consume: (Range<Int>) throws -> Void) throws {
        precondition(w.count == rows * cols && a.count == r * cols && b.count == rows * r && blockRows > 0)
        let job = DeltaJob(w: w, cols: cols, a: a, b: b, r: r, inF: cols, outF: rows, scaling: scaling,
                           fanInFanOut: false, roundDelta: roundDelta, parts: 1)
        let blocks = (rows + blockRows - 1) / blockRows
        let state = DeltaBlocks(blocks)
        let group = DispatchGroup()
        for _ in 0..<max(1, min(threads, blocks)) {
            DispatchQueue.global().async(group: group) {
                while let k = state.claim() {
                    job.runRows((k * blockRows)..<min(rows, (k + 1) * blockRows))
                    state.done[k].signal()
                }
            }
        }
        defer {
            state.cancel()
            group.wait()
        }
        for k in 0..<blocks {
            state.done[k].wait()
            try consume((k * blockRows)..<min(rows, (k + 1) * blockRows))
        }
    }
}

/// The blocks of a streamed delta: the next one to claim, and one semaphore per block that its
/// worker signals when the block is done.
final class DeltaBlocks: @unchecked Sendable {
    let done: [DispatchSemaphore]
    private let lock = DispatchSemaphore(value: 1)
    private var next = 0
    private let count: Int

    init(_ count: Int) {
        self.count = count
        done = (0..<count).map { _ in DispatchSemaphore(value: 0) }
    }

    func claim() -> Int? {
        lock.wait()
        defer { lock.signal() }
        guard next < count else { return nil }
        next += 1
        return next - 1
    }

    /// No block is claimed after this.
    func cancel() {
        lock.wait()
        next = count
        lock.signal()
    }
}
