import Foundation
import FTQFormats
import FTQKernels

/// The `--plot` chart of `ftq compare` (formats/metrics.md, "Chart"): a heatmap of one error
/// figure by layer (rows) and tensor kind (columns), as a self-contained SVG document.
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

    static func escape(_ s: String) -> String {
        var o = ""
        for u in s.unicodeScalars {
            switch u {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            default:
                // Characters XML 1.0 forbids are replaced.
                if u.value < 0x20 && u != "\t" && u != "\n" { o += "?" } else { o.unicodeScalars.append(u) }
            }
        }
        return o
    }

    /// A colour from white (t = 0) through orange to dark red (t = 1).
    static func color(_ t: Double) -> String {
        let stops: [(Double, Double, Double)] = [(255, 247, 236), (253, 187, 132), (239, 101, 72), (179, 0, 0), (127, 0, 0)]
        let x = max(0, min(1, t)) * Double(stops.count - 1)
        let i = min(Int(x), stops.count - 2), f = x - Double(i)
        let c = (0..<3).map { k -> Int in
            let a = [stops[i].0, stops[i].1, stops[i].2][k], b = [stops[i + 1].0, stops[i + 1].1, stops[i + 1].2][k]
            return Int((a + (b - a) * f).rounded())
        }
        return String(format: "#%02x%02x%02x", c[0], c[1], c[2])
    }

    static func svg(_ r: ModelComparison, metric: String, a: String, b: String) -> String {
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
        let left = 70, top = 64, legendW = 120
        let width = left + cols.count * cellW + legendW + 20
        let height = max(top + rows.count * cellH + 60, top + 260)
        var s = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" font-family="DejaVu Sans, Arial, sans-serif">
        <rect x="0" y="0" width="\(width)" height="\(height)" fill="#ffffff"/>
        <text x="\(left)" y="22" font-size="15" font-weight="bold">\(escape(label(metric))) by layer and tensor kind</text>
        <text x="\(left)" y="40" font-size="11" fill="#444444">A: \(escape(String(a.suffix(60))))   B: \(escape(String(b.suffix(60))))</text>

        """
        for (j, k) in cols.enumerated() {
            s += "<text x=\"\(left + j * cellW + cellW / 2)\" y=\"\(top - 6)\" font-size=\"11\" text-anchor=\"middle\">\(k)</text>\n"
        }
        s += "<text x=\"\(left + cols.count * cellW / 2)\" y=\"\(top + rows.count * cellH + 30)\" font-size=\"12\" text-anchor=\"middle\">tensor kind</text>\n"
        s += "<text x=\"16\" y=\"\(top + rows.count * cellH / 2)\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 16 \(top + rows.count * cellH / 2))\">layer</text>\n"
        for (i, row) in rows.enumerated() {
            let y = top + i * cellH
            s += "<text x=\"\(left - 6)\" y=\"\(y + cellH / 2 + 4)\" font-size=\"10\" text-anchor=\"end\">\(row == "rest" ? "other" : row)</text>\n"
            for (j, k) in cols.enumerated() {
                let x = left + j * cellW
                guard let st = cells["\(row)|\(k)"] else {
                    s += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cellW)\" height=\"\(cellH)\" fill=\"#f0f0f0\" stroke=\"#ffffff\"/>\n"
                    continue
                }
                let v = value(metric, st)
                var t = v.map { hi > lo ? ($0 - lo) / (hi - lo) : 0.5 } ?? 0
                if higherIsBetter { t = 1 - t }
                let fill = v == nil ? "#bdbdbd" : color(t)
                s += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(cellW)\" height=\"\(cellH)\" fill=\"\(fill)\" stroke=\"#ffffff\"><title>layer \(row) \(k): \(v.map(Compare.fmt) ?? "undefined")</title></rect>\n"
                if cellH >= 18 {
                    let ink = t > 0.55 ? "#ffffff" : "#000000"
                    s += "<text x=\"\(x + cellW / 2)\" y=\"\(y + cellH / 2 + 4)\" font-size=\"10\" text-anchor=\"middle\" fill=\"\(ink)\">\(v.map(Compare.fmt) ?? (st.identical ? "same" : "-"))</text>\n"
                }
            }
        }
        // Legend: the colour scale with its end values.
        let lx = left + cols.count * cellW + 30, ly = top, lh = 180
        s += "<text x=\"\(lx)\" y=\"\(ly - 6)\" font-size=\"11\">\(escape(metric))</text>\n"
        for i in 0..<36 {
            let t = 1 - Double(i) / 35
            s += "<rect x=\"\(lx)\" y=\"\(ly + i * lh / 36)\" width=\"18\" height=\"\(lh / 36 + 1)\" fill=\"\(color(t))\"/>\n"
        }
        let worst = higherIsBetter ? lo : hi, best = higherIsBetter ? hi : lo
        s += "<text x=\"\(lx + 24)\" y=\"\(ly + 10)\" font-size=\"10\">\(Compare.fmt(worst)) (worst)</text>\n"
        s += "<text x=\"\(lx + 24)\" y=\"\(ly + lh)\" font-size=\"10\">\(Compare.fmt(best))</text>\n"
        s += "<rect x=\"\(lx)\" y=\"\(ly + lh + 14)\" width=\"18\" height=\"10\" fill=\"#bdbdbd\"/><text x=\"\(lx + 24)\" y=\"\(ly + lh + 23)\" font-size=\"10\">undefined</text>\n"
        s += "<rect x=\"\(lx)\" y=\"\(ly + lh + 30)\" width=\"18\" height=\"10\" fill=\"#f0f0f0\"/><text x=\"\(lx + 24)\" y=\"\(ly + lh + 39)\" font-size=\"10\">no tensor</text>\n"
        s += "</svg>\n"
        return s
    }
}
