import FTQCore
import FTQFormats
import FTQKernels

/// The `--plot` chart of `ftq compare` (formats/metrics.md, "Chart"): a heatmap of one error
/// figure by layer (rows) and tensor kind (columns), as a self-contained SVG document or a PNG.
enum ErrorChart {
    static let kindOrder = ["embedding", "attn_q", "attn_k", "attn_v", "attn_qkv", "attn_o",
                            "mlp_gate", "mlp_up", "mlp_down", "norm", "output", "other"]

    /// The figure named `metric` of a set of sums.
    static func value(_ metric: String, _ s: ErrorStats) -> Double? {
        switch metric {
        case "sqnr_db": return s.sqnrDB
        case "cosine": return s.cosine
        default: return Compare.value(metric, s)
        }
    }

    static func label(_ metric: String) -> String {
        switch metric {
        case "rmse": return "RMSE"
        case "max_abs": return "max absolute error"
        case "mean_abs": return "mean absolute error"
        case "relative_frobenius": return "relative Frobenius error ||B-A||/||A||"
        case "rmse_rel": return "RMSE / mean |A|"
        case "max_abs_rel": return "max absolute error / mean |A|"
        case "sqnr_db": return "SQNR (dB, higher is better)"
        case "cosine": return "cosine similarity (higher is better)"
        default: return metric
        }
    }

    /// A colour from white (t = 0) through orange to dark red (t = 1).
    static func color(_ t: Double) -> RGB {
        let stops: [(Double, Double, Double)] = [(255, 247, 236), (253, 187, 132), (239, 101, 72), (179, 0, 0), (127, 0, 0)]
        let x = max(0, min(1, t)) * Double(stops.count - 1)
        let i = min(Int(x), stops.count - 2), f = x - Double(i)
        let c = (0..<3).map { k -> UInt8 in
            let a = [stops[i].0, stops[i].1, stops[i].2][k], b = [stops[i + 1].0, stops[i + 1].1, stops[i + 1].2][k]
            return UInt8((a + (b - a) * f).rounded())
        }
        return RGB(c[0], c[1], c[2])
    }

    /// The file extensions `--plot` accepts.
    static let formats = [".svg", ".png"]

    /// Writes the chart to `path` as SVG or PNG, by its extension (checked by the caller with
    /// `formats`), under a temporary name until complete.
    static func write(_ r: ModelComparison, metric: String, a: String, b: String, to path: String) throws {
        let chart = drawing(r, metric: metric, a: a, b: b)
        let bytes = path.hasByteSuffix(".png") ? chart.png() : Array(chart.svg().utf8)
        let out = try OutputFile(path, overwrite: true)
        do {
            try out.write(bytes)
            try out.finish()
            try out.commit()
        } catch {
            out.abort()
            throw error
        }
    }

    /// The usage error for a `--plot` name that is neither .svg nor .png.
    static func checkName(_ path: String) throws {
        guard formats.contains(where: { path.hasByteSuffix($0) }) else {
            throw FTQError.usage("usage.plot", "--plot writes SVG or PNG: give a NAME.svg or NAME.png (got \(path))")
        }
    }

    static func drawing(_ r: ModelComparison, metric: String, a: String, b: String) -> Drawing {
        // Cells: (row, kind) -> summed statistics; rows are layers, then "other" for the rest.
        var cells: [String: ErrorStats] = [:]
        var layers = Set<Int>()
        var kinds = Set<String>()
        var hasRest = false
        for t in r.tensors {
            let row = t.layer.map(String.init) ?? "rest"
            if let l = t.layer { layers.insert(l) } else { hasRest = true }
            kinds.insert(t.kind)
            cells["\(row)|\(t.kind)", default: ErrorStats()].merge(t.stats)
        }
        let rows = layers.sorted().map(String.init) + (hasRest ? ["rest"] : [])
        let cols = kindOrder.filter(kinds.contains)
        let values = cells.values.compactMap { value(metric, $0) }
        let lo = values.min() ?? 0, hi = values.max() ?? 1
        let higherIsBetter = metric == "sqnr_db" || metric == "cosine"
        let cellW = 74, cellH = rows.count > 40 ? 14 : 22
        let left = 70, top = 64, legendW = 160
        let width = left + cols.count * cellW + legendW + 20
        let height = max(top + rows.count * cellH + 60, top + 260)
        let grey = RGB(0x44, 0x44, 0x44), empty = RGB(0xf0, 0xf0, 0xf0), undefined = RGB(0xbd, 0xbd, 0xbd)
        var d = Drawing(width: width, height: height)
        d.rect(0, 0, width, height, fill: .white)
        d.text(left, 22, "\(label(metric)) by layer and tensor kind", size: 15, bold: true)
        d.text(left, 40, "A: \(String(a.suffix(60)))   B: \(String(b.suffix(60)))", size: 11, fill: grey)
        for (j, k) in cols.enumerated() {
            d.text(left + j * cellW + cellW / 2, top - 6, k, size: 11, anchor: .middle)
        }
        d.text(left + cols.count * cellW / 2, top + rows.count * cellH + 30, "tensor kind", size: 12, anchor: .middle)
        d.text(16, top + rows.count * cellH / 2, "layer", size: 12, anchor: .middle, vertical: true)
        for (i, row) in rows.enumerated() {
            let y = top + i * cellH
            d.text(left - 6, y + cellH / 2 + 4, row == "rest" ? "other" : row, size: 10, anchor: .end)
            for (j, k) in cols.enumerated() {
                let x = left + j * cellW
                guard let st = cells["\(row)|\(k)"] else {
                    d.rect(x, y, cellW, cellH, fill: empty, stroke: .white)
                    continue
                }
                let v = value(metric, st)
                var t = v.map { hi > lo ? ($0 - lo) / (hi - lo) : 0.5 } ?? 0
                if higherIsBetter { t = 1 - t }
                d.rect(x, y, cellW, cellH, fill: v == nil ? undefined : color(t), stroke: .white,
                       title: "layer \(row) \(k): \(v.map(Compare.fmt) ?? "undefined")")
                if cellH >= 18 {
                    d.text(x + cellW / 2, y + cellH / 2 + 4, v.map(Compare.fmt) ?? (st.identical ? "same" : "-"), size: 10,
                           anchor: .middle, fill: t > 0.55 ? .white : .black)
                }
            }
        }
        // Legend: the colour scale with its end values.
        let lx = left + cols.count * cellW + 30, ly = top, lh = 180
        d.text(lx, ly - 6, metric, size: 11)
        for i in 0..<36 {
            d.rect(lx, ly + i * lh / 36, 18, lh / 36 + 1, fill: color(1 - Double(i) / 35))
        }
        let worst = higherIsBetter ? lo : hi, best = higherIsBetter ? hi : lo
        d.text(lx + 24, ly + 10, "\(Compare.fmt(worst)) (worst)", size: 10)
        d.text(lx + 24, ly + lh, Compare.fmt(best), size: 10)
        d.rect(lx, ly + lh + 14, 18, 10, fill: undefined)
        d.text(lx + 24, ly + lh + 23, "undefined", size: 10)
        d.rect(lx, ly + lh + 30, 18, 10, fill: empty)
        d.text(lx + 24, ly + lh + 39, "no tensor", size: 10)
        return d
    }
}
