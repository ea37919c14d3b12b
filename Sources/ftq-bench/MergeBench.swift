import FTQKernels

/// `ftq-bench merge ROWS`: the LoRA delta of a rank-16 adapter on ROWS rows of 4096 columns
/// (one q_proj-shaped slice), on one core: the fast kernel (LoRADeltaRow.compute: FMA lanes in
/// AVX2 builds, the exact float64 emulation in portable ones) and the scalar reference
/// (Float.addingProduct per element and step), in G multiply-adds/s, medians of 5; and
/// LoRADelta.add (delta, scaling and the addition into the weight) on the same rows.
func mergeBench(_ rows: Int) {
    let r = 16, n = 4096
    let a = benchFloats(r * n), b = benchFloats(rows * r).map { $0 * 3 }
    var acc = [Float](repeating: 0, count: n)
    let steps = Double(rows * r * n)
    a.withUnsafeBufferPointer { ap in
        b.withUnsafeBufferPointer { bp in
            acc.withUnsafeMutableBufferPointer { cp in
                let small = LoRADeltaRow.smallestMagnitude(ap.baseAddress!, r * n)
                let tFast = medianTime {
                    for o in 0..<rows {
                        LoRADeltaRow.compute(b: bp.baseAddress! + o * r, a: ap.baseAddress!, rank: r, columns: n, into: cp.baseAddress!, aSmallest: small)
                    }
                }
                let tRef = medianTime {
                    for o in 0..<rows { LoRADeltaRow.reference(b: bp.baseAddress! + o * r, a: ap.baseAddress!, rank: r, columns: n, into: cp.baseAddress!) }
                }
                print("LoRA delta, rank \(r), \(rows)x\(n): fast \(format3(steps / tFast / 1e9)) G multiply-adds/s, reference \(format3(steps / tRef / 1e9)) (one core)")
            }
        }
    }
    var w = [Float](repeating: 0.01, count: rows * n)
    let tAdd = medianTime {
        w.withUnsafeMutableBufferPointer { wp in
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    LoRADelta.add(to: wp, rows: rows, cols: n, a: ap, b: bp, rank: r, scaling: 2, fanInFanOut: false, threads: 1)
                }
            }
        }
    }
    print("LoRADelta.add, same shape: \(format3(Double(rows * n) / tAdd / 1e9)) G weights/s (one core)")
}
