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
}
