/// DoRA's merge step (formats/lora-merge.md, "DoRA"): each output row of the updated weight
/// V = W + delta is scaled by magnitude / ||V row||, the norm computed in float32 in the order
/// torch's CPU kernel adds (so the result has PEFT's bits).
public enum DoRA {
    /// The float32 Euclidean norm of `x` as torch computes it on the CPU for a contiguous row:
    /// 8 lane sums of x² over the first multiple of 8 elements (lane j takes elements j, j + 8,
    /// ...; each square and each addition rounded), the lanes added in order 0...7, then each
    /// remaining element's square added with a fused multiply-add, in order; the square root of
    /// that, rounded.
    public static func rowNorm(_ x: UnsafeBufferPointer<Float>) -> Float {
        let n = x.count
        let body = n / 8 * 8
        var lanes = SIMD8<Float>()
        if body > 0 {
            let p = UnsafeRawPointer(x.baseAddress!)
            var i = 0
            while i < body {
                let v = p.loadUnaligned(fromByteOffset: i * 4, as: SIMD8<Float>.self)
                lanes = lanes + v * v
                i += 8
            }
        }
        var s = lanes[0]
        for j in 1..<8 { s = s + lanes[j] }
        for i in body..<n { s = s.addingProduct(x[i], x[i]) }
        return s.squareRoot()
    }

    /// Scales each row o of `w` (rows x cols, float32, rows are output features) by
    /// magnitude[o] / rowNorm(row o), both steps rounded to float32.
    public static func scaleRows(_ w: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int, magnitude: UnsafeBufferPointer<Float>) {
        precondition(w.count == rows * cols && magnitude.count == rows)
        for o in 0..<rows {
            let row = UnsafeMutableBufferPointer(rebasing: w[(o * cols)..<((o + 1) * cols)])
            let factor = magnitude[o] / rowNorm(UnsafeBufferPointer(row))
            for i in 0..<cols { row[i] = factor * row[i] }
        }
    }

    /// The float32 Euclidean norm of each column of `w` (rows x cols, row-major) as torch computes
    /// `linalg.norm(w.T, dim=1)` on the CPU, the reduced dimension strided: for each column, the
    /// squares of its elements added in row order, each square and each addition rounded (no
    /// fused multiply-add), then the square root, rounded. (A GPT-2 Conv1D weight is [in, out]:
    /// its output features are columns.)
    public static func columnNorms(_ w: UnsafeBufferPointer<Float>, rows: Int, cols: Int) -> [Float] {
        precondition(w.count == rows * cols)
        var acc = [Float](repeating: 0, count: cols)
        for r in 0..<rows {
            for c in 0..<cols {
                let x = w[r * cols + c]
                let sq = x * x
                acc[c] = acc[c] + sq
            }
        }
        return acc.map { $0.squareRoot() }
    }

    /// Scales each column o of `w` (rows x cols, float32; columns are output features, as in a
    /// fan_in_fan_out weight) by magnitude[o] / columnNorms[o], both steps rounded to float32.
    public static func scaleColumns(_ w: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int, magnitude: UnsafeBufferPointer<Float>) {
        precondition(w.count == rows * cols && magnitude.count == cols)
        let norms = columnNorms(UnsafeBufferPointer(w), rows: rows, cols: cols)
        let factors = (0..<cols).map { magnitude[$0] / norms[$0] }
        for r in 0..<rows {
            for c in 0..<cols { w[r * cols + c] = factors[c] * w[r * cols + c] }
        }
    }

    /// DoRA's step for a weight in its stored layout: rows scaled ([out, in]), or columns with
    /// `fanInFanOut` ([in, out], GPT-2's Conv1D).
    public static func scale(_ w: UnsafeMutableBufferPointer<Float>, rows: Int, cols: Int, magnitude: UnsafeBufferPointer<Float>, fanInFanOut: Bool) {
        if fanInFanOut {
            scaleColumns(w, rows: rows, cols: cols, magnitude: magnitude)
        } else {
            scaleRows(w, rows: rows, cols: cols, magnitude: magnitude)
        }
    }
}
