import Foundation
import Testing

/// ftq against the Python peers: safetensors 0.8.0, gguf-py 0.19.0, numpy and ml_dtypes 0.6.0
/// (tools/requirements-test.txt). The peers write the inputs and read ftq's outputs through the
/// helpers in tools/interop/; each helper prints a JSON report and exits 1 when a check fails.
@Suite struct InteropTests {
    // MARK: helpers

    /// The JSON report of a tools/interop helper.
    struct PeerReport {
        var status: Int32
        var json: [String: Any]
        var output: String

        var ok: Bool { status == 0 && (json["ok"] as? Bool) == true }
        var problems: [String] { json["problems"] as? [String] ?? [] }
        var summary: Comment { Comment(rawValue: "exit \(status)\n\(output)") }
    }

    /// Runs `python3 tools/interop/SCRIPT ARGS`.
    static func peer(_ script: String, _ args: [String]) throws -> PeerReport {
        let r = try TestSupport.python(TestSupport.tool("interop/" + script), args)
        let obj = (try? JSONSerialization.jsonObject(with: r.stdoutData)) as? [String: Any] ?? [:]
        return PeerReport(status: r.status, json: obj, output: r.stdout + r.stderr)
    }

    /// Runs a helper that must succeed (it writes the inputs of a test).
    @discardableResult
    static func make(_ script: String, _ args: [String]) throws -> PeerReport {
        let r = try peer(script, args)
        try #require(r.ok, r.summary)
        return r
    }

    /// Runs ftq and requires exit status 0.
    @discardableResult
    static func ftqOK(_ args: [String]) throws -> TestSupport.Result {
        let r = try TestSupport.ftq(args)
        try #require(r.status == 0, "ftq \(args.joined(separator: " ")) exited \(r.status): \(r.stderr)")
        return r
    }

    /// `ftq inspect PATH --json`, saved to `jsonPath` and parsed.
    @discardableResult
    static func inspect(_ path: String, to jsonPath: String) throws -> [String: Any] {
        let r = try ftqOK(["inspect", path, "--json"])
        try r.stdoutData.write(to: URL(fileURLWithPath: jsonPath))
        return try #require(try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any])
    }

    static func read(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    /// nil when the files are identical, else where they first differ.
    static func firstDifference(_ a: String, _ b: String) throws -> String? {
        let x = try read(a), y = try read(b)
        if x == y { return nil }
        let n = min(x.count, y.count)
        var k = 0
        while k < n && x[x.startIndex + k] == y[y.startIndex + k] { k += 1 }
        return "\(a) (\(x.count) bytes) and \(b) (\(y.count) bytes) first differ at byte \(k)"
    }

    static func tensorNames(_ doc: [String: Any]) -> [String] {
        (doc["tensors"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
    }

    // MARK: 1. safetensors written by save_file

    /// Every dtype safetensors.numpy writes (numpy and ml_dtypes element types), empty and 0-dim
    /// tensors and __metadata__: inspect reports what the file says, and convert reproduces it.
    @Test func safetensorsEveryDtypeInspectAndConvert() throws {
        let dir = try TestSupport.tempDir("interop-st")
        defer { TestSupport.cleanup(dir) }
        let src = dir + "/all.safetensors"
        try Self.make("safetensors_peer.py", ["all-dtypes", dir])

        let doc = try Self.inspect(src, to: dir + "/all.json")
        let check = try Self.peer("safetensors_peer.py", ["check-inspect", src, dir + "/all.json"])
        #expect(check.ok, check.summary)
        let dtypes = Set((doc["tensors"] as? [[String: Any]] ?? []).compactMap { $0["dtype"] as? String })
        #expect(dtypes == ["BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64", "F16", "BF16", "F32",
                           "F64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "C64"])
        #expect(Self.tensorNames(doc).count == 23)
        #expect((doc["metadata"] as? [String: String])?["note"] == "quote\" back\\slash tab\t nl\n é 😀")

        let out = dir + "/out.safetensors"
        try Self.ftqOK(["convert", src, "-o", out])
        let same = try Self.peer("safetensors_peer.py", ["check-same", src, out])
        #expect(same.ok, same.summary)
        // Same tensors, same metadata in the same order: the writer's own bytes.
        #expect(try Self.firstDifference(src, out) == nil)
    }

    // MARK: 2. safetensors writer byte-identity

    /// A hand-made file listing tensors (every dtype, names that sort differently by case, digits,
    /// non-ASCII and control characters) in shuffled order, __metadata__ last: ftq's output equals
    /// save_file(load(input), metadata) byte for byte, with one metadata key and with none.
    @Test func safetensorsWriterMatchesSaveFile() throws {
        let dir = try TestSupport.tempDir("interop-st-writer")
        defer { TestSupport.cleanup(dir) }
        try Self.make("safetensors_peer.py", ["shuffled", dir])
        for label in ["meta", "nometa"] {
            let src = "\(dir)/shuffled-\(label).safetensors"
            let out = "\(dir)/ftq-\(label).safetensors"
            try Self.ftqOK(["convert", src, "-o", out])
            #expect(try Self.firstDifference(out, "\(dir)/reference-\(label).safetensors") == nil)
            // The input itself is laid out differently, so equality above is the writer's doing.
            #expect(try Self.firstDifference(src, out) != nil)
        }
    }

    // MARK: 3. GGUF written by GGUFWriter

    /// Every metadata value type (scalars, arrays of each, nested arrays), tensors F32, F16, BF16,
    /// F64, I8, I16, I32, I64 and Q8_0: inspect matches GGUFReader's view.
    @Test func ggufInspectMatchesGGUFReader() throws {
        let dir = try TestSupport.tempDir("interop-gguf")
        defer { TestSupport.cleanup(dir) }
        let src = dir + "/full.gguf"
        try Self.make("gguf_peer.py", ["full", dir])
        let doc = try Self.inspect(src, to: dir + "/full.json")
        let check = try Self.peer("gguf_peer.py", ["check-inspect", src, dir + "/full.json"])
        #expect(check.ok, check.summary)
        #expect(check.json["metadata_keys"] as? Int == 37)
        let types = doc["metadata_types"] as? [String: String] ?? [:]
        #expect(types["test.u64"] == "u64")
        #expect(types["tokenizer.ggml.tokens"] == "array[string]")
        #expect(types["test.arr.nested_i32"] == "array[array[i32]]")
        let dtypes = (doc["tensors"] as? [[String: Any]] ?? []).compactMap { $0["dtype"] as? String }
        #expect(dtypes == ["F32", "F16", "BF16", "Q8_0", "F64", "I8", "I16", "I32", "I64"])
    }

    // MARK: 4. GGUF writer byte-identity

    /// GGUF -> GGUF without --dtype reproduces gguf-py's file (default alignment and
    /// general.alignment = 64), and GGUFReader reads the copy with the same key-values and tensors.
    @Test func ggufRoundTripIsByteIdentical() throws {
        let dir = try TestSupport.tempDir("interop-gguf-rt")
        defer { TestSupport.cleanup(dir) }
        try Self.make("gguf_peer.py", ["plain", dir])
        for name in ["plain", "aligned"] {
            let src = "\(dir)/\(name).gguf", out = "\(dir)/\(name)-ftq.gguf"
            try Self.ftqOK(["convert", src, "-o", out])
            #expect(try Self.firstDifference(src, out) == nil)
            let same = try Self.peer("gguf_peer.py", ["check-same", src, out])
            #expect(same.ok, same.summary)
            try Self.inspect(src, to: "\(dir)/\(name).json")
            let check = try Self.peer("gguf_peer.py", ["check-inspect", src, "\(dir)/\(name).json"])
            #expect(check.ok, check.summary)
        }
    }

    /// safetensors -> GGUF equals GGUFWriter's file for the same tensors in the same order (less
    /// the general.architecture entry GGUFWriter always adds: ftq writes no key-values for a
    /// safetensors source), and GGUFReader reads identical arrays from it.
    @Test func safetensorsToGGUFMatchesGGUFWriter() throws {
        let dir = try TestSupport.tempDir("interop-st-gguf")
        defer { TestSupport.cleanup(dir) }
        try Self.make("gguf_peer.py", ["st-source", dir])
        let out = dir + "/ftq.gguf"
        try Self.ftqOK(["convert", dir + "/src.safetensors", "-o", out])
        #expect(try Self.firstDifference(out, dir + "/ref.gguf") == nil)
        let values = try Self.peer("gguf_peer.py", ["check-gguf-st", out, dir + "/src.safetensors"])
        #expect(values.ok, values.summary)
        #expect(values.json["tensors"] as? Int == 9)
    }

    // MARK: 5. GGUF -> safetensors values

    /// GGUF (every unquantized type) -> safetensors file and -> Hugging Face directory: the
    /// safetensors package reads the arrays GGUFReader reads, with numpy's shapes.
    @Test func ggufToSafetensorsValues() throws {
        let dir = try TestSupport.tempDir("interop-gguf-st")
        defer { TestSupport.cleanup(dir) }
        try Self.make("gguf_peer.py", ["plain", dir])
        for name in ["plain", "aligned"] {
            let out = "\(dir)/\(name).safetensors"
            try Self.ftqOK(["convert", "\(dir)/\(name).gguf", "-o", out])
            let values = try Self.peer("gguf_peer.py", ["check-gguf-st", "\(dir)/\(name).gguf", out])
            #expect(values.ok, values.summary)
            #expect(values.json["tensors"] as? Int == 8)
        }
        let hf = dir + "/hf"
        try Self.ftqOK(["convert", dir + "/plain.gguf", "-o", hf])
        let values = try Self.peer("gguf_peer.py", ["check-gguf-st", dir + "/plain.gguf", hf + "/model.safetensors"])
        #expect(values.ok, values.summary)
    }

    // MARK: 6. float conversions

    /// --dtype f32/f16/bf16 from F16 and BF16 (all 65536 bit patterns each) and from F32 and F64
    /// (zeros, infinities, NaN payloads, subnormals, every F16 and BF16 rounding tie and its
    /// neighbours, overflow thresholds, random values): bits equal numpy's and ml_dtypes' astype.
    @Test func floatConversionsMatchNumpyAndMLDtypes() throws {
        let dir = try TestSupport.tempDir("interop-floats")
        defer { TestSupport.cleanup(dir) }
        try Self.make("floats_peer.py", ["make", dir])
        for target in ["f32", "f16", "bf16"] {
            try Self.ftqOK(["convert", dir + "/floats.safetensors", "-o", "\(dir)/out-\(target).safetensors", "--dtype", target])
        }
        let check = try Self.peer("floats_peer.py", ["check", dir])
        #expect(check.ok, check.summary)
        let conversions = check.json["conversions"] as? [String: [String: Int]] ?? [:]
        #expect(conversions.count == 12)
        for (name, c) in conversions.sorted(by: { $0.key < $1.key }) {
            #expect(c["mismatches"] == 0, "\(name): \(c["mismatches"] ?? -1) of \(c["elements"] ?? -1) elements differ")
        }
        #expect(conversions["f16->bf16"]?["elements"] == 65536)
        #expect(conversions["bf16->f16"]?["elements"] == 65536)
    }

    // MARK: 7. sharded directories

    /// --max-shard-size 1KB: shards named model-0000K-of-0000N.safetensors, each save_file's bytes
    /// for its tensors, together the source's tensors; the index is json.dumps(indent=2,
    /// sort_keys=True) + "\n" with metadata.total_size the sum of tensor bytes; ftq reads the
    /// directory back as one model. A size that fits everything writes model.safetensors alone.
    @Test func shardedDirectoryReadByPython() throws {
        let dir = try TestSupport.tempDir("interop-shards")
        defer { TestSupport.cleanup(dir) }
        let src = dir + "/big.safetensors"
        try Self.make("shards_peer.py", ["big", dir])
        let out = dir + "/sharded"
        try Self.ftqOK(["convert", src, "-o", out, "--max-shard-size", "1KB"])
        let check = try Self.peer("shards_peer.py", ["check-sharded", out, src, "1000"])
        #expect(check.ok, check.summary)
        #expect((check.json["shards"] as? Int ?? 0) >= 3)

        let doc = try Self.inspect(out, to: dir + "/sharded.json")
        let back = try Self.peer("shards_peer.py", ["check-inspect-dir", out, dir + "/sharded.json"])
        #expect(back.ok, back.summary)
        #expect(Self.tensorNames(doc).count == 19)

        let single = dir + "/single"
        try Self.ftqOK(["convert", src, "-o", single, "--max-shard-size", "1MB"])
        let one = try Self.peer("shards_peer.py", ["check-single", single, src])
        #expect(one.ok, one.summary)
    }

    /// A sharded directory written in Python (save_file shards, index by json.dumps) is one model
    /// to ftq, opened by its directory or by its index file.
    @Test func pythonShardedDirectoryInspect() throws {
        let dir = try TestSupport.tempDir("interop-pyshards")
        defer { TestSupport.cleanup(dir) }
        try Self.make("shards_peer.py", ["python-sharded", dir])
        let model = dir + "/model"
        for (k, path) in [model, model + "/model.safetensors.index.json"].enumerated() {
            let doc = try Self.inspect(path, to: "\(dir)/inspect\(k).json")
            let check = try Self.peer("shards_peer.py", ["check-inspect-dir", model, "\(dir)/inspect\(k).json"])
            #expect(check.ok, check.summary)
            #expect(Self.tensorNames(doc).count == 19)
        }
    }

    // MARK: names

    /// Tensor names and GGUF keys are code-point sequences to the peers: "é" (U+00E9) and
    /// "e" + U+0301 are two names, as are U+212B and U+00C5. ftq must keep both.
    @Test func canonicallyEquivalentNamesAreDistinct() throws {
        let dir = try TestSupport.tempDir("interop-names")
        defer { TestSupport.cleanup(dir) }
        try Self.make("safetensors_peer.py", ["canonical", dir])
        try Self.make("gguf_peer.py", ["canonical", dir])

        let st = dir + "/canonical.safetensors"
        let r = try TestSupport.ftq(["inspect", st, "--json"])
        #expect(r.status == 0, "ftq inspect exited \(r.status): \(r.stderr)")
        if r.status == 0 {
            try r.stdoutData.write(to: URL(fileURLWithPath: dir + "/st.json"))
            let check = try Self.peer("safetensors_peer.py", ["check-inspect", st, dir + "/st.json"])
            #expect(check.ok, check.summary)
        }
        let stOut = dir + "/out.safetensors"
        let c1 = try TestSupport.ftq(["convert", st, "-o", stOut])
        #expect(c1.status == 0, "ftq convert exited \(c1.status): \(c1.stderr)")
        if c1.status == 0 { #expect(try Self.firstDifference(st, stOut) == nil) }

        let gguf = dir + "/canonical.gguf"
        let g = try TestSupport.ftq(["inspect", gguf, "--json"])
        #expect(g.status == 0, "ftq inspect exited \(g.status): \(g.stderr)")
        if g.status == 0 {
            try g.stdoutData.write(to: URL(fileURLWithPath: dir + "/gguf.json"))
            let check = try Self.peer("gguf_peer.py", ["check-inspect", gguf, dir + "/gguf.json"])
            #expect(check.ok, check.summary)
        }
        let ggufOut = dir + "/out.gguf"
        let c2 = try TestSupport.ftq(["convert", gguf, "-o", ggufOut])
        #expect(c2.status == 0, "ftq convert exited \(c2.status): \(c2.stderr)")
        if c2.status == 0 { #expect(try Self.firstDifference(gguf, ggufOut) == nil) }
    }
}
