import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import FTQCore
import FTQFormats
import FTQKernels

/// `ftq compare A B`: the error of every tensor of B against A (formats/metrics.md).
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure how far the tensors of B are from those of A (RMSE, max error, SQNR, cosine, ...).",
        discussion: """
        A and B are models in any form ftq reads (safetensors file or directory, GGUF, a \
        bitsandbytes checkpoint); tensors with the same name are compared after decoding both to \
        float32 (a bitsandbytes weight with its parts is one tensor), a window at a time, in \
        bounded memory. Figures are float64 (formats/metrics.md): per tensor, per kind (attn_q, \
        mlp_up, embedding, ...) and for the whole model, element-weighted. Text output lists the \
        worst tensors first (by relative Frobenius error); --json and --markdown for scripts and \
        reports. Tensors present in one model only are listed; a shape mismatch is an error.

        --fail-above METRIC=VALUE (repeatable) exits 1 when any tensor's METRIC (rmse, max_abs, \
        mean_abs, relative_frobenius, rmse_rel, max_abs_rel) exceeds VALUE, or when its \
        figures are undefined (non-finite values).
        """
    )

    @Argument(help: "The reference model.")
    var a: String

    @Argument(help: "The model to measure against it.")
    var b: String

    @Flag(help: "Print the figures as JSON.")
    var json = false

    @Flag(help: "Print the figures as Markdown tables.")
    var markdown = false

    @Option(name: .customLong("fail-above"), help: "METRIC=VALUE: exit 1 when a tensor's METRIC exceeds VALUE.")
    var failAbove: [String] = []

    @Option(help: "Write a chart of the error by layer and tensor kind to this file: NAME.svg or NAME.png.")
    var plot: String?

    @Option(help: "The figure the chart shows: relative_frobenius (default), rmse, max_abs, mean_abs, rmse_rel, max_abs_rel, sqnr_db or cosine.")
    var plotMetric: String = "relative_frobenius"

    @Flag(name: [.short, .long], help: "No progress on stderr.")
    var quiet = false

    @OptionGroup var threads: ThreadOptions

    static let gateMetrics = ["rmse", "max_abs", "mean_abs", "relative_frobenius", "rmse_rel", "max_abs_rel"]

    func run() throws {
        if json && markdown { throw FTQError.usage("usage.conflict", "--json and --markdown are exclusive") }
        var gates: [(String, Double)] = []
        for g in failAbove {
            let parts = g.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, Self.gateMetrics.contains(parts[0]), let v = Double(parts[1]), v.isFinite else {
                throw FTQError.usage("usage.fail-above", "--fail-above takes METRIC=VALUE with METRIC one of \(Self.gateMetrics.joined(separator: ", ")) (got \"\(g)\")")
            }
            gates.append((parts[0], v))
        }
        if let plot { try ErrorChart.checkName(plot) }
        guard (Self.gateMetrics + ["sqnr_db", "cosine"]).contains(plotMetric) else {
            throw FTQError.usage("usage.plot", "--plot-metric must be one of \((Self.gateMetrics + ["sqnr_db", "cosine"]).joined(separator: ", ")) (got \"\(plotMetric)\")")
        }
        let ma = try LogicalModel(try ModelOpener.open(a))
        let mb = try LogicalModel(try ModelOpener.open(b))
        let total = ma.tensors.reduce(0) { $0 + $1.count * 8 }
        let prog = Progress(label: "compare", totalBytes: total, quiet: quiet)
        let result = try Comparison.compare(ma, mb, threads: threads.count, progress: prog)
        prog.finish()

        if let plot { try ErrorChart.write(result, metric: plotMetric, a: a, b: b, to: plot) }
        var failures: [String] = []
        for t in result.tensors {
            for (metric, limit) in gates {
                let v = Self.value(metric, t.stats)
                if v == nil || v! > limit {
                    failures.append("\(t.name): \(metric) \(v.map(Self.fmt) ?? "undefined") > \(Self.fmt(limit))")
                }
            }
        }
        if json {
            try printOut(JSONText.serialize(Self.jsonReport(result, a: a, b: b, failures: failures), indent: 2) + "\n")
        } else {
            try printOut(Self.textReport(result, markdown: markdown))
        }
        if !failures.isEmpty {
            writeStderr(failures.prefix(20).map { "ftq: fail-above: \(TerminalText.escaped($0, limit: 300))\n" }.joined())
            throw ExitCode(1)
        }
    }

    static func value(_ metric: String, _ s: ErrorStats) -> Double? {
        switch metric {
        case "rmse": return s.rmse
        case "max_abs": return s.maxAbsValue
        case "mean_abs": return s.meanAbs
        case "relative_frobenius": return s.relativeFrobenius
        case "rmse_rel": return s.rmseRelative
        case "max_abs_rel": return s.maxAbsRelative
        default: return nil
        }
    }

    static func figures(_ s: ErrorStats) -> [(String, JSONValue)] {
        let d = { (x: Double?) -> JSONValue in x.map(JSONValue.double) ?? .null }
        var f: [(String, JSONValue)] = [
            ("numel", .int(s.count)),
            ("rmse", d(s.rmse)),
            ("max_abs", d(s.maxAbsValue)),
            ("mean_abs", d(s.meanAbs)),
            ("relative_frobenius", d(s.relativeFrobenius)),
            ("sqnr_db", d(s.sqnrDB)),
            ("cosine", d(s.cosine)),
            ("rmse_rel", d(s.rmseRelative)),
            ("max_abs_rel", d(s.maxAbsRelative)),
            ("identical", .bool(s.identical)),
        ]
        if s.nonFinite { f.append(("non_finite", .bool(true))) }
        return f
    }

    /// Per-kind sums, in first-seen order, with the tensor holding each kind's maximum.
    static func rollup(_ r: ModelComparison) -> [(String, ErrorStats, String)] {
        var order: [String] = []
        var sums: [String: (ErrorStats, String)] = [:]
        for t in r.tensors {
            if sums[t.kind] == nil { order.append(t.kind); sums[t.kind] = (ErrorStats(), t.name) }
            var (s, at) = sums[t.kind]!
            if t.stats.maxAbs > s.maxAbs || s.maxAbsIndex < 0 { at = t.name }
            s.merge(t.stats)
            sums[t.kind] = (s, at)
        }
        return order.map { ($0, sums[$0]!.0, sums[$0]!.1) }
    }

    static func totals(_ r: ModelComparison) -> (ErrorStats, String) {
        var s = ErrorStats(), at = ""
        for t in r.tensors {
            if t.stats.maxAbs > s.maxAbs || s.maxAbsIndex < 0 { at = t.name }
            s.merge(t.stats)
        }
        return (s, at)
    }

    static func jsonReport(_ r: ModelComparison, a: String, b: String, failures: [String]) -> JSONValue {
        let tensors: [JSONValue] = r.tensors.map { t in
            .object([("name", .string(t.name)), ("kind", .string(t.kind)), ("layer", t.layer.map { .int($0) } ?? .null),
                     ("shape", .array(t.shape.map { .int($0) })), ("type_a", .string(t.typeA)), ("type_b", .string(t.typeB))]
                    + figures(t.stats) + [("max_abs_index", t.stats.maxAbsIndex >= 0 ? .int(t.stats.maxAbsIndex) : .null)])
        }
        let kinds = rollup(r).map { (k, s, at) in (k, JSONValue.object(figures(s) + [("max_abs_tensor", .string(at))])) }
        let (tot, at) = totals(r)
        return .object([
            ("a", .string(a)), ("b", .string(b)),
            ("tensors", .array(tensors)),
            ("kinds", .object(kinds)),
            ("total", .object(figures(tot) + [("max_abs_tensor", r.tensors.isEmpty ? .null : .string(at))])),
            ("only_in_a", .array(r.onlyInA.map { .string($0) })),
            ("only_in_b", .array(r.onlyInB.map { .string($0) })),
            ("failed", .array(failures.map { .string($0) })),
        ])
    }

    /// The figures of a quantization report: `{"tensors", "kinds", "total"}` as in --json.
    static func reportJSON(_ r: ModelComparison) -> JSONValue {
        guard case let .object(m) = jsonReport(r, a: "", b: "", failures: []) else { return .null }
        return .object(m.filter { ["tensors", "kinds", "total"].contains($0.0) })
    }

    /// printf's `%.4g`.
    static func fmt(_ x: Double) -> String {
        var buf = [CChar](repeating: 0, count: 64)
        _ = withVaList([x]) { vsnprintf(&buf, buf.count, "%.4g", $0) }
        return String(cString: buf)
    }
    static func fmt(_ x: Double?) -> String { x.map { fmt($0) } ?? "-" }

    static func textReport(_ r: ModelComparison, markdown: Bool) -> String {
        if r.tensors.isEmpty {
            var s = "no tensors to compare\n"
            if !r.onlyInA.isEmpty { s += "only in A (\(r.onlyInA.count)): " + r.onlyInA.prefix(20).map { TerminalText.escaped($0, limit: 200) }.joined(separator: ", ") + "\n" }
            if !r.onlyInB.isEmpty { s += "only in B (\(r.onlyInB.count)): " + r.onlyInB.prefix(20).map { TerminalText.escaped($0, limit: 200) }.joined(separator: ", ") + "\n" }
            return s
        }
        let header = ["tensor", "kind", "types", "numel", "rmse", "max_abs", "rel_frob", "sqnr_db", "cosine", "rmse_rel"]
        func row(_ name: String, _ kind: String, _ types: String, _ s: ErrorStats) -> [String] {
            [name, kind, types, String(s.count), fmt(s.rmse), fmt(s.maxAbsValue), fmt(s.relativeFrobenius),
             s.identical ? "inf" : fmt(s.sqnrDB), fmt(s.cosine), fmt(s.rmseRelative)]
        }
        // Worst first: by relative Frobenius error, undefined figures first of all.
        let sorted = r.tensors.enumerated().sorted { x, y in
            let a = x.element.stats.relativeFrobenius ?? .infinity, b = y.element.stats.relativeFrobenius ?? .infinity
            return a != b ? a > b : x.offset < y.offset
        }.map(\.element)
        var rows = sorted.map { row(TerminalText.escaped($0.name, limit: 200), $0.kind, "\($0.typeA)->\($0.typeB)", $0.stats) }
        var out = table(header, rows, markdown: markdown)
        rows = rollup(r).map { row($0.0, "", "", $0.1) }
        let (tot, _) = totals(r)
        rows.append(row("total", "", "", tot))
        out += "\n" + table(["kind", "", "", "numel", "rmse", "max_abs", "rel_frob", "sqnr_db", "cosine", "rmse_rel"], rows, markdown: markdown)
        if !r.onlyInA.isEmpty { out += "\nonly in A (\(r.onlyInA.count)): " + r.onlyInA.prefix(20).map { TerminalText.escaped($0, limit: 200) }.joined(separator: ", ") + "\n" }
        if !r.onlyInB.isEmpty { out += "\nonly in B (\(r.onlyInB.count)): " + r.onlyInB.prefix(20).map { TerminalText.escaped($0, limit: 200) }.joined(separator: ", ") + "\n" }
        return out
    }

    static func table(_ header: [String], _ rows: [[String]], markdown: Bool) -> String {
        if markdown {
            var s = "| " + header.joined(separator: " | ") + " |\n|" + header.map { _ in "---|" }.joined() + "\n"
            for r in rows { s += "| " + r.map { $0.replacing("|", with: "\\|") }.joined(separator: " | ") + " |\n" }
            return s
        }
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in i < 3 ? c + String(repeating: " ", count: widths[i] - c.count)
                                               : String(repeating: " ", count: widths[i] - c.count) + c }
                .joined(separator: "  ").trimmingWhitespace() + "\n"
        }
        return line(header) + rows.map(line).joined()
    }
}
