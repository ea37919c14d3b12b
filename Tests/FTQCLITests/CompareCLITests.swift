import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

/// `ftq compare` against numpy float64 (tools/interop/compare_peer.py, formats/metrics.md).
@Suite struct CompareCLITests {
    static let peer = TestSupport.tool("interop/compare_peer.py")
    static let golden = TestSupport.testdata("golden/bnb-model")

    func check(_ a: String, _ b: String, in dir: String) throws -> [String: Any] {
        let r = try TestSupport.ftq(["compare", a, b, "--json", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        try r.stdoutData.write(to: URL(fileURLWithPath: dir + "/c.json"))
        let p = try TestSupport.python(Self.peer, ["check", a, b, dir + "/c.json"])
        #expect(p.status == 0, "\(p.stdout)\(p.stderr)")
        return try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
    }

    @Test(arguments: ["nf4", "fp4", "int8"])
    func bitsandbytesAgainstTheSourceMatchNumpy(_ v: String) throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let doc = try check(Self.golden + "/source/model.safetensors", Self.golden + "/\(v)/model.safetensors", in: dir)
        let tensors = doc["tensors"] as! [[String: Any]]
        #expect(tensors.count == 21)
        let q = tensors.first { $0["name"] as? String == "model.layers.0.mlp.up_proj.weight" }!
        #expect(q["kind"] as? String == "mlp_up" && q["layer"] as? Int == 0 && q["type_b"] as? String == v.uppercased())
        let e = tensors.first { $0["name"] as? String == "model.embed_tokens.weight" }!
        #expect(e["identical"] as? Bool == true && e["sqnr_db"] is NSNull && e["kind"] as? String == "embedding")
        let kinds = doc["kinds"] as! [String: Any]
        #expect(Set(kinds.keys) == ["output", "embedding", "norm", "attn_q", "attn_k", "attn_v", "attn_o", "mlp_gate", "mlp_up", "mlp_down"])
    }

    @Test func threadsDoNotChangeTheFigures() throws {
        let a = Self.golden + "/source", b = Self.golden + "/fp4"
        let one = try TestSupport.ftq(["compare", a, b, "--json", "--threads", "1", "-q"])
        let three = try TestSupport.ftq(["compare", a, b, "--json", "--threads", "3", "-q"])
        #expect(one.status == 0 && one.stdoutData == three.stdoutData)
    }

    @Test func ggufQuantizationsOfOneModelMatchNumpy() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let doc = try check(TestSupport.testdata("llamacpp/tiny-llama-Q4_K_M.gguf"), TestSupport.testdata("llamacpp/tiny-llama-Q4_0.gguf"), in: dir)
        let kinds = doc["kinds"] as! [String: Any]
        #expect(kinds["attn_q"] != nil && kinds["output"] != nil && kinds["mlp_down"] != nil, "\(kinds.keys)")
    }

    @Test func textMarkdownOnlyInAndGates() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let a = Self.golden + "/source", b = Self.golden + "/nf4"
        var r = try TestSupport.ftq(["compare", a, b, "-q"])
        #expect(r.status == 0 && r.stdout.hasPrefix("tensor") && r.stdout.contains("\ntotal "), "\(r.stdout)")
        // Worst first: a quantized tensor leads, the kept ones (error 0) come last.
        let lines = r.stdout.split(separator: "\n")
        #expect(lines[1].contains("->NF4") && lines[21].contains("BF16->BF16"), "\(r.stdout)")
        r = try TestSupport.ftq(["compare", a, b, "--markdown", "-q"])
        #expect(r.stdout.hasPrefix("| tensor | kind |"), "\(r.stdout)")
        r = try TestSupport.ftq(["compare", a, b, "--fail-above", "relative_frobenius=0.05", "-q"])
        #expect(r.status == 1 && r.stderr.contains("ftq: fail-above: model.layers"), "\(r.stderr)")
        r = try TestSupport.ftq(["compare", a, b, "--fail-above", "relative_frobenius=0.5", "--fail-above", "max_abs_rel=10", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        for bad in ["sqnr=3", "rmse", "rmse=x", "rmse=inf"] {
            #expect(try TestSupport.ftq(["compare", a, b, "--fail-above", bad]).status == 2, "\(bad)")
        }
        // Tensors in one model only are listed; a shape mismatch is an error naming the tensor.
        BnBQuantizeCLITests.safetensors([("model.norm.weight", "F32", [48], [UInt8](repeating: 0, count: 192)),
                                         ("extra.weight", "F32", [2], [UInt8](repeating: 0, count: 8))], to: dir + "/x.safetensors")
        r = try TestSupport.ftq(["compare", a, dir + "/x.safetensors", "--json", "-q"])
        let doc = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        #expect((doc["only_in_b"] as! [String]) == ["extra.weight"] && (doc["only_in_a"] as! [String]).count == 20)
        BnBQuantizeCLITests.safetensors([("model.norm.weight", "F32", [2, 24], [UInt8](repeating: 0, count: 192))], to: dir + "/y.safetensors")
        r = try TestSupport.ftq(["compare", a, dir + "/y.safetensors"])
        #expect(r.status == 3 && r.stderr.contains("\"model.norm.weight\" is [48]") && r.stderr.contains("[compare.shape-mismatch]"), "\(r.stderr)")
    }

    /// --plot writes a well-formed SVG that declares its size, and a real renderer
    /// (rsvg-convert, installed by tools/setup.sh) turns it into a non-blank image of that size;
    /// --plot NAME.png writes the same chart as a PNG.
    @Test(arguments: ["relative_frobenius", "sqnr_db"])
    func chartRendersToANonBlankImage(_ metric: String) throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let svg = dir + "/chart.svg"
        var r = try TestSupport.ftq(["compare", Self.golden + "/source", Self.golden + "/nf4", "--plot", svg, "--plot-metric", metric, "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        let data = try Data(contentsOf: URL(fileURLWithPath: svg))
        let text = String(decoding: data, as: UTF8.self)
        final class Root: NSObject, XMLParserDelegate {
            var attributes: [String: String]? = nil
            func parser(_ p: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes a: [String: String]) {
                if attributes == nil { attributes = a }
            }
        }
        let root = Root()
        let parser = XMLParser(data: data)
        parser.delegate = root
        #expect(parser.parse(), "not well-formed: \(String(describing: parser.parserError))")
        let w = Int(root.attributes?["width"] ?? ""), h = Int(root.attributes?["height"] ?? "")
        #expect(w != nil && h != nil)
        #expect(text.contains("layer") && text.contains("tensor kind") && text.contains("mlp_down") && text.contains(metric))
        r = try TestSupport.run("/usr/bin/env", ["rsvg-convert", svg, "-o", dir + "/chart.png"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.python(TestSupport.tool("interop/png_check.py"), [dir + "/chart.png"])
        let png = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        #expect(png["width"] as? Int == w && png["height"] as? Int == h, "\(png)")
        #expect((png["colors"] as? Int ?? 0) > 20 && (png["non_white"] as? Double ?? 0) > 0.05, "\(png)")

        // The same chart as ftq's own PNG: same size, valid (CRCs, zlib), not blank, and the
        // cells (inside their white outlines, away from their text) the colours rsvg-convert
        // painted from the SVG. Geometry: formats/metrics.md (cells 74 x 22 from (70, 64)).
        r = try TestSupport.ftq(["compare", Self.golden + "/source", Self.golden + "/nf4", "--plot", dir + "/own.png", "--plot-metric", metric, "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        let points = (0..<2).flatMap { row in (0..<4).flatMap { col in [0, 66].map { dx in "\(70 + col * 74 + 3 + dx),\(64 + row * 22 + 3)" } } }
        r = try TestSupport.python(TestSupport.tool("interop/png_check.py"), [dir + "/own.png"] + points)
        #expect(r.status == 0, "\(r.stderr)")
        let own = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        #expect(own["width"] as? Int == w && own["height"] as? Int == h, "\(own)")
        #expect((own["colors"] as? Int ?? 0) > 20 && (own["non_white"] as? Double ?? 0) > 0.05, "\(own)")
        r = try TestSupport.python(TestSupport.tool("interop/png_check.py"), [dir + "/chart.png"] + points)
        let rendered = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        let ownPixels = own["pixels"] as? [String: String] ?? [:], renderedPixels = rendered["pixels"] as? [String: String] ?? [:]
        #expect(ownPixels.count == points.count && ownPixels == renderedPixels, "\(ownPixels) vs \(renderedPixels)")
        #expect(Set(ownPixels.values).count > 3, "the sampled cells have several colours: \(ownPixels)")
        #expect(try TestSupport.ftq(["compare", Self.golden + "/source", Self.golden + "/nf4", "--plot", dir + "/x.jpg"]).status == 2)
        #expect(try TestSupport.ftq(["compare", Self.golden + "/source", Self.golden + "/nf4", "--plot", svg, "--plot-metric", "bogus"]).status == 2)
    }
}

/// `ftq quantize --report`: the error measured while quantizing equals what `ftq compare`
/// finds between the input and the output afterwards.
@Suite struct QuantizeReportCLITests {
    static func figures(_ doc: [String: Any]) -> [String: [String: Any]] {
        Dictionary(uniqueKeysWithValues: (doc["tensors"] as! [[String: Any]]).map { ($0["name"] as! String, $0) })
    }

    static func same(_ a: [String: Any], _ b: [String: Any]) -> Bool {
        for k in ["numel", "rmse", "max_abs", "mean_abs", "relative_frobenius", "sqnr_db", "cosine"] {
            if let x = a[k] as? Double, let y = b[k] as? Double {
                if abs(x - y) > 1e-9 * max(abs(x), abs(y)) { return false }
            } else if (a[k] is NSNull) != (b[k] is NSNull) { return false }
        }
        return true
    }

    @Test(arguments: [["--nf4"], ["--fp4", "--no-double-quant"], ["--int8"], ["--type", "Q4_K"], ["--type", "Q8_0"]])
    func reportEqualsCompare(_ flags: [String]) throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        // A model whose rows fill 256-element blocks, from the ggml goldens, and the tiny Llama.
        let golden = TestSupport.testdata("golden/ggml-kquants-quantize/normal.f32")
        let normal = [UInt8](try Data(contentsOf: URL(fileURLWithPath: golden)))
        let src = dir + "/m.safetensors"
        BnBQuantizeCLITests.safetensors([("model.layers.3.mlp.up_proj.weight", "F32", [4, 2048], normal)], to: src)
        let out = dir + (flags[0] == "--type" ? "/o.gguf" : "/o.safetensors")
        let plot = dir + (flags[0] == "--type" ? "/p.png" : "/p.svg")
        var r = try TestSupport.ftq(["quantize", src] + flags + ["-o", out, "--report", "--json", "--plot", plot, "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        let doc = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        let report = doc["report"] as! [String: Any]
        r = try TestSupport.ftq(["compare", src, out, "--json", "-q"])
        let cmp = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        let got = Self.figures(report), want = Self.figures(cmp)
        #expect(got.count == 1 && Set(got.keys) == Set(want.keys))
        for (name, f) in got { #expect(Self.same(f, want[name]!), "\(name): \(f) vs \(want[name]!)") }
        // The manifest carries the same report, and verify accepts it.
        let manifestPath = out + ".manifest.json"
        let m = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: manifestPath))) as! [String: Any]
        #expect(Self.figures(m["report"] as! [String: Any]).count == 1)
        #expect((m["command"] as! [String]).contains("--report"))
        #expect(try TestSupport.ftq(["verify", out]).status == 0)
        let chart = try Data(contentsOf: URL(fileURLWithPath: plot))
        #expect(plot.hasSuffix(".png") ? chart.starts(with: [0x89, 0x50, 0x4E, 0x47]) : chart.starts(with: Array("<?xml".utf8)))
    }

    @Test func usage() throws {
        let src = TestSupport.testdata("golden/bnb-model/source")
        for args in [["--nf4", "--plot", "/tmp/x.svg"], ["--nf4", "--report", "--plot", "/tmp/x.jpg"], ["--nf4", "--report", "--dry-run"]] {
            #expect(try TestSupport.ftq(["quantize", src] + args).status == 2, "\(args)")
        }
    }
}
