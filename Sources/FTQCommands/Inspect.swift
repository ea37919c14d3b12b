import ArgumentParser
import FTQCore
import FTQFormats

/// `ftq inspect`: headers only, instant on any size of model.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model's format, metadata and tensors (reads headers only).",
        discussion: """
        PATH is a .safetensors file, a Hugging Face directory (model.safetensors or shards with \
        model.safetensors.index.json), a GGUF file, or one part of a split GGUF set.

        Shapes are row-major, outermost dimension first (numpy order; for GGUF that is ne reversed). \
        Offsets are absolute byte offsets in the file that holds the tensor. Dtypes are the format's \
        own names (BF16, Q4_K, ...).

        --json prints {"format", "version", "metadata", "metadata_types" (GGUF), "tensors": \
        [{"name", "dtype", "shape", "offset", "nbytes", "file"}], "total_parameters", \
        "parameters_by_dtype", "total_bytes"}, with metadata arrays complete.
        """
    )

    @Argument(help: "Model file or directory.")
    var path: String

    @Flag(help: "Print JSON for scripts.")
    var json = false

    @Option(help: "In text mode, show at most N elements of a metadata array.")
    var maxArrayItems = 8

    func validate() throws {
        guard maxArrayItems >= 0 else {
            throw ValidationError("--max-array-items must be 0 or more")
        }
    }

    func run() throws {
        let model = try ModelOpener.open(path)
        if json {
            var out = JSONStream()
            InspectReport.writeJSON(model, to: &out)
            out.raw("\n")
            try out.finish()
        } else {
            try printOut(InspectReport.text(model, maxArrayItems: maxArrayItems))
        }
    }
}

/// The content of `ftq inspect`, as text and JSON.
enum InspectReport {
    static func parameters(_ model: Model) -> (total: Int, byType: [(String, Int)]) {
        var order: [String] = []
        var by: [String: Int] = [:]
        for t in model.tensors {
            if by[t.type.name] == nil { order.append(t.type.name) }
            by[t.type.name, default: 0] += t.elementCount
        }
        return (by.values.reduce(0, +), order.map { ($0, by[$0]!) })
    }

    /// Writes the JSON report: the same document as ``json(_:)``, with metadata streamed.
    static func writeJSON(_ model: Model, to out: inout JSONStream) {
        let whole = json(model, metadata: false)
        guard case let .object(members) = whole else { return }
        out.object(level: 0) { out, first in
            for (k, v) in members {
                out.key(k, level: 0, first: &first)
                if k == "metadata" {
                    out.object(level: 1) { out, first in
                        for (mk, mv) in model.metadata {
                            out.key(mk, level: 1, first: &first)
                            if case let .gguf(g) = mv { out.gguf(g, level: 2) } else { out.value(mv.json, level: 2) }
                        }
                    }
                } else {
                    out.value(v, level: 1)
                }
            }
        }
    }

    /// The JSON report; with `metadata: false` the metadata object is left empty (for
    /// ``writeJSON(_:to:)``, which streams it).
    static func json(_ model: Model, metadata: Bool = true) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("format", .string(model.format.rawValue)),
            ("version", model.version.map { .int($0) } ?? .null),
            ("metadata", .object(metadata ? model.metadata.map { ($0.0, $0.1.json) } : [])),
        ]
        if model.format == .gguf {
            members.append(("metadata_types", .object(model.metadata.compactMap { k, v in
                if case let .gguf(g) = v { return (k, .string(g.typeName)) }
                return nil
            })))
        }
        members.append(("tensors", .array(model.tensors.map { t in
            .object([
                ("name", .string(t.name)),
                ("dtype", .string(t.type.name)),
                ("shape", .array(t.shape.map { .int($0) })),
                ("offset", .int(t.offset)),
                ("nbytes", .int(t.nbytes)),
                ("file", .string(model.file(of: t).path)),
            ])
        })))
        let p = parameters(model)
        members.append(("total_parameters", .int(p.total)))
        members.append(("parameters_by_dtype", .object(p.byType.map { ($0.0, .int($0.1)) })))
        members.append(("total_bytes", .int(model.totalBytes)))
        return .object(members)
    }

    static func text(_ model: Model, maxArrayItems: Int) -> String {
        var out = ""
        out += "path:     \(oneLine(model.path, limit: 1000))\n"
        out += "format:   \(model.format.rawValue)\(model.version.map { " v\($0)" } ?? "")\n"
        if model.files.count > 1 {
            out += "files:    \(model.files.count)\n"
            for f in model.files { out += "          \(oneLine(f.path, limit: 1000))\n" }
        }
        out += "metadata: \(model.metadata.count) entr\(model.metadata.count == 1 ? "y" : "ies")\n"
        for (k, v) in model.metadata {
            switch v {
            case let .string(s): out += "  \(oneLine(k, limit: 200)) = \(oneLine(s, limit: 200))\n"
            case let .gguf(g): out += "  \(oneLine(k, limit: 200)): \(g.typeName) = \(summary(g, maxItems: maxArrayItems))\n"
            case let .json(j): out += "  \(oneLine(k, limit: 200)) = \(oneLine(JSONText.serialize(j), limit: 200))\n"
            }
        }
        out += "tensors:  \(model.tensors.count)\n"
        let rows = model.tensors.map { t in
            [oneLine(t.name, limit: 200), t.type.name, "[" + t.shape.map(String.init).joined(separator: ", ") + "]", String(t.offset), String(t.nbytes)]
        }
        out += table(header: ["name", "dtype", "shape", "offset", "bytes"], rows: rows, rightAligned: [3, 4])
        let p = parameters(model)
        out += "parameters: \(p.total)"
        if !p.byType.isEmpty { out += " (" + p.byType.map { "\($0.0): \($0.1)" }.joined(separator: ", ") + ")" }
        out += "\n"
        out += "bytes:      \(model.totalBytes) (\(ByteSize.format(model.totalBytes)))\n"
        return out
    }

    static func summary(_ v: GGUFValue, maxItems: Int) -> String {
        if case let .array(a) = v {
            let shown = a.prefix(maxItems).map { summary($0, maxItems: maxItems) }.joined(separator: ", ")
            let more = a.count > maxItems ? (shown.isEmpty ? "" : ", ") + "... (\(a.count) items)" : ""
            return "[" + shown + more + "]"
        }
        if case let .string(s) = v { return oneLine(JSONText.quote(s), limit: 120) }
        return JSONText.serialize(v.json)
    }

    /// Text from a file, on one line, safe for a terminal, at most about `limit` characters.
    static func oneLine(_ s: String, limit: Int) -> String {
        TerminalText.escaped(s, limit: limit)
    }

    static func table(header: [String], rows: [[String]], rightAligned: Set<Int>) -> String {
        var widths = header.map(\.count)
        for r in rows { for (k, c) in r.enumerated() { widths[k] = max(widths[k], c.count) } }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (k, c) in cells.enumerated() {
                let pad = String(repeating: " ", count: widths[k] - c.count)
                parts.append(rightAligned.contains(k) ? pad + c : c + pad)
            }
            return "  " + parts.joined(separator: "  ").trimmedRight() + "\n"
        }
        return ([line(header)] + rows.map(line)).joined()
    }
}

extension String {
    func trimmedRight() -> String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
