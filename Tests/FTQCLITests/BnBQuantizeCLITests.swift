import Foundation
import Testing

/// `ftq quantize --nf4/--fp4/--int8` against what transformers + bitsandbytes save for the same
/// checkpoint (tools/golden/make_bnb_model.py, testdata/golden/bnb-model/README.md).
@Suite struct BnBQuantizeCLITests {
    static let golden = TestSupport.testdata("golden/bnb-model")

    static func data(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    /// The variants, the ftq flags that make them, and the golden directory.
    static let variants: [(String, [String])] = [
        ("nf4", ["--nf4"]),
        ("fp4", ["--fp4", "--no-double-quant", "--compute-dtype", "f16"]),
        ("int8", ["--int8"]),
    ]

    @Test(arguments: [0, 1, 2])
    func directoryIsByteIdenticalToTransformers(_ v: Int) throws {
        let (name, flags) = Self.variants[v]
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let out = dir + "/" + name
        var r = try TestSupport.ftq(["quantize", Self.golden + "/source"] + flags + ["-o", out])
        #expect(r.status == 0, "\(r.stderr)")
        for f in ["model.safetensors", "config.json", "generation_config.json"] {
            #expect(try Self.data(out + "/" + f) == Self.data(Self.golden + "/\(name)/" + f), "\(name)/\(f)")
        }
        // One line per tensor on stderr, then the summary on stdout.
        #expect(r.stderr.contains("model.layers.0.mlp.down_proj.weight [48, 90] BF16 -> \(name.uppercased())"), "\(r.stderr)")
        #expect(r.stderr.contains("model.embed_tokens.weight [96, 48] BF16 kept (embedding or output head)"), "\(r.stderr)")
        #expect(r.stdout.contains("14 of 21 tensors -> \(name.uppercased())"), "\(r.stdout)")
        r = try TestSupport.run("/usr/bin/env", ["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd: out)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(try TestSupport.ftq(["verify", out]).status == 0)
    }

    /// Every 2-D case of the kernel goldens (bf16, f16 and f32 sources; partial blocks, odd
    /// counts, zero and constant blocks, outliers, subnormals, values on thresholds) through the
    /// whole command: the output tensors equal bitsandbytes' for every configuration.
    @Test func everyGoldenCaseThroughTheCommand() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let golden = TestSupport.testdata("golden/bnb/bnb4.safetensors")
        let peer = TestSupport.tool("interop/bnb_golden_cases.py")
        var r = try TestSupport.python(peer, ["make", golden, dir])
        #expect(r.status == 0, "\(r.stderr)")
        let made = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        let caseNames = Set(made["cases"] as! [String])
        let doc = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: TestSupport.testdata("golden/bnb/cases.json")))) as! [String: Any]
        var checked = 0
        for c in doc["bnb4"] as! [[String: Any]] where caseNames.contains(c["name"] as! String) {
            let name = c["name"] as! String
            for conf in c["configs"] as! [String] {
                let parts = conf.split(separator: ".")
                var flags = ["--\(parts[0])", "--blocksize", String(parts[1].dropFirst(2))]
                if parts[2] == "nodq" { flags.append("--no-double-quant") }
                let out = dir + "/\(name).\(conf).out.safetensors"
                r = try TestSupport.ftq(["quantize", dir + "/\(name).safetensors"] + flags + ["-o", out, "-q"])
                #expect(r.status == 0, "\(name) \(conf): \(r.stderr)")
                r = try TestSupport.python(peer, ["check", golden, name, conf, out])
                #expect(r.status == 0, "\(name) \(conf): \(r.stdout)\(r.stderr)")
                checked += 1
            }
        }
        #expect(checked >= 40)
    }

    /// A single file gives a single file with the same tensors (and, as the source metadata is
    /// transformers' own, the same bytes).
    @Test func fileInputGivesAFile() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        try FileManager.default.copyItem(atPath: Self.golden + "/source/model.safetensors", toPath: dir + "/model.safetensors")
        let r = try TestSupport.ftq(["quantize", dir + "/model.safetensors", "--nf4", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.isEmpty, "\(r.stderr)")
        #expect(try Self.data(dir + "/model-nf4.safetensors") == Self.data(Self.golden + "/nf4/model.safetensors"))
        #expect(FileManager.default.fileExists(atPath: dir + "/model-nf4.safetensors.manifest.json"))
        #expect(try TestSupport.ftq(["verify", dir + "/model-nf4.safetensors"]).status == 0)
    }

    @Test func defaultDirectoryNameAndDeterminism() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        try FileManager.default.copyItem(atPath: Self.golden + "/source", toPath: dir + "/tiny")
        var r = try TestSupport.ftq(["quantize", dir + "/tiny/", "--nf4", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        let first = try Self.data(dir + "/tiny-nf4/ftq-manifest.json")
        r = try TestSupport.ftq(["quantize", "tiny", "--nf4", "-q", "--force", "--threads", "1"], cwd: dir)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Self.data(dir + "/tiny-nf4/ftq-manifest.json") == first)
        let m = try JSONSerialization.jsonObject(with: first) as! [String: Any]
        let inputs = (m["inputs"] as! [[String: Any]]).map { $0["path"] as! String }
        #expect(inputs == ["../tiny/model.safetensors", "../tiny/config.json", "../tiny/generation_config.json"], "\(inputs)")
        let options = m["options"] as! [String: Any]
        #expect(options["type"] as? String == "NF4" && options["blocksize"] as? Int == 64 && options["double_quant"] as? Bool == true)
    }

    @Test func skipKeepsWeightsAndNamesThemForTransformers() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let r = try TestSupport.ftq(["quantize", Self.golden + "/source", "--nf4", "--skip", "mlp\\.down", "-o", dir + "/o", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("12 of 21 tensors"), "\(r.stdout)")
        let cfg = try JSONSerialization.jsonObject(with: Self.data(dir + "/o/config.json")) as! [String: Any]
        let q = cfg["quantization_config"] as! [String: Any]
        let skipped = Set(q["llm_int8_skip_modules"] as! [String])
        #expect(skipped.isSuperset(of: ["lm_head", "model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"]), "\(skipped)")
        let i = try TestSupport.ftq(["inspect", dir + "/o", "--json"])
        let doc = try JSONSerialization.jsonObject(with: i.stdoutData) as! [String: Any]
        let types = Dictionary(uniqueKeysWithValues: (doc["tensors"] as! [[String: Any]]).map { ($0["name"] as! String, $0["dtype"] as! String) })
        #expect(types["model.layers.0.mlp.down_proj.weight"] == "BF16")
        #expect(types["model.layers.0.mlp.up_proj.weight"] == "U8")
    }

    @Test func otherBlockSizeWritesItsQuantState() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let r = try TestSupport.ftq(["quantize", Self.golden + "/source/model.safetensors", "--fp4", "--blocksize", "128", "-o", dir + "/o.safetensors", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        let i = try TestSupport.ftq(["inspect", dir + "/o.safetensors", "--json"])
        let doc = try JSONSerialization.jsonObject(with: i.stdoutData) as! [String: Any]
        let tensors = Dictionary(uniqueKeysWithValues: (doc["tensors"] as! [[String: Any]]).map { ($0["name"] as! String, $0["shape"] as! [Int]) })
        // gate_proj: 90 x 48 = 4320 values = 33 full blocks of 128 and a partial one.
        #expect(tensors["model.layers.0.mlp.gate_proj.weight.absmax"] == [34])
        #expect(tensors["model.layers.0.mlp.gate_proj.weight"] == [2160, 1])
        #expect(tensors["model.layers.0.mlp.gate_proj.weight.quant_state.bitsandbytes__fp4"] != nil)
    }

    @Test func dryRunWritesNothing() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        var r = try TestSupport.ftq(["quantize", Self.golden + "/source", "--nf4", "--dry-run", "-o", dir + "/o"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("dry run: would write"), "\(r.stdout)")
        #expect(r.stdout.contains("lm_head.weight [96, 48] BF16 kept"), "\(r.stdout)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/o"))
        r = try TestSupport.ftq(["quantize", Self.golden + "/source", "--int8", "--dry-run", "--json", "-o", dir + "/o"])
        let doc = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        let rows = doc["tensors"] as! [[String: Any]]
        #expect(rows.count == 21 && rows.filter { $0["quantize"] as? Bool == true }.count == 14)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    /// A safetensors file with one F32 weight [2, 64] whose values are given.
    static func oneWeight(_ dir: String, _ values: [Float], dtype: String = "F32") throws -> String {
        let header = #"{"layer.weight":{"dtype":"F32","shape":[2,64],"data_offsets":[0,512]}}"#
        var bytes: [UInt8] = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian, Array.init) + Array(header.utf8)
        for v in values { bytes += withUnsafeBytes(of: v.bitPattern.littleEndian, Array.init) }
        let path = dir + "/w.safetensors"
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    @Test func nonFiniteValuesAreRefusedAndNothingIsWritten() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        for bad: Float in [.nan, .infinity, -.infinity] {
            var v = (0..<128).map { Float($0) / 128 }
            v[77] = bad
            let src = try Self.oneWeight(dir, v)
            for flag in ["--nf4", "--fp4", "--int8"] {
                let r = try TestSupport.ftq(["quantize", src, flag, "-o", dir + "/o.safetensors"])
                #expect(r.status == 3, "\(flag) \(bad): \(r.stderr)")
                #expect(r.stderr.contains("tensor \"layer.weight\"") && r.stderr.contains("[quantize.non-finite]"), "\(r.stderr)")
                #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["w.safetensors"])
            }
        }
        // Beyond float16's range: LLM.int8 casts to float16 first.
        var v = (0..<128).map { Float($0) }
        v[3] = 70000
        let src = try Self.oneWeight(dir, v)
        let r = try TestSupport.ftq(["quantize", src, "--int8", "-o", dir + "/o.safetensors"])
        #expect(r.status == 3 && r.stderr.contains("float16"), "\(r.stderr)")
        #expect(try TestSupport.ftq(["quantize", src, "--nf4", "-o", dir + "/o.safetensors", "-q"]).status == 0)
    }

    /// Slices of a large tensor are split across threads at block boundaries: the bytes must
    /// not depend on --threads (a partial last block and an odd count included).
    @Test func threadsDoNotChangeTheBytes() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let rows = 1001, cols = 1023  // 1,024,023 values: 16,000 blocks of 64 and 23 left over
        var bytes = [UInt8]()
        bytes.reserveCapacity(rows * cols * 4)
        var seed: UInt64 = 9
        for _ in 0..<(rows * cols) {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            bytes += withUnsafeBytes(of: (Float(Int64(bitPattern: seed) >> 40) * 1e-7).bitPattern.littleEndian, Array.init)
        }
        Self.safetensors([("big.weight", "F32", [rows, cols], bytes)], to: dir + "/big.safetensors")
        var outs: [Data] = []
        for t in ["1", "2", "3"] {
            let r = try TestSupport.ftq(["quantize", dir + "/big.safetensors", "--nf4", "--threads", t, "-o", dir + "/o\(t).safetensors", "-q"])
            #expect(r.status == 0, "\(r.stderr)")
            outs.append(try Self.data(dir + "/o\(t).safetensors"))
        }
        #expect(outs[0] == outs[1] && outs[1] == outs[2])
    }

    @Test func alreadyQuantizedInputsAreRefused() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        for v in ["nf4", "int8"] {
            for flags in [["--nf4"], ["--int8"], ["--type", "Q8_0", "-o", dir + "/x.gguf"]] {
                let r = try TestSupport.ftq(["quantize", Self.golden + "/" + v] + flags + (flags.count == 1 ? ["-o", dir + "/x"] : []))
                #expect(r.status == 3 && r.stderr.contains("[quantize.already-quantized]"), "\(v) \(flags): \(r.stderr)")
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test func usageErrors() throws {
        let src = Self.golden + "/source"
        for args in [["--nf4", "--fp4"], [], ["--nf4", "--type", "Q8_0"], ["--nf4", "--blocksize", "48"],
                     ["--int8", "--blocksize", "128"], ["--nf4", "--compute-dtype", "f8"], ["--nf4", "--skip", "("],
                     ["--nf4", "-o", "/tmp/x.gguf"], ["--type", "Q8_0", "--skip", "x"]] {
            let r = try TestSupport.ftq(["quantize", src] + args)
            #expect(r.status == 2, "\(args): \(r.stderr)")
            #expect(r.stderr.hasPrefix("ftq: error:"), "\(args): \(r.stderr)")
        }
    }

    // MARK: dequantize

    static let dequantPeer = TestSupport.tool("interop/bnb_dequant_peer.py")

    @Test(arguments: ["nf4", "fp4", "int8"])
    func dequantizesTransformersCheckpoints(_ name: String) throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        var r = try TestSupport.ftq(["dequantize", Self.golden + "/" + name, "-o", dir + "/d", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        // config.json loses its quantization_config: the source's bytes again.
        #expect(try Self.data(dir + "/d/config.json") == Self.data(Self.golden + "/source/config.json"))
        #expect(try Self.data(dir + "/d/generation_config.json") == Self.data(Self.golden + "/source/generation_config.json"))
        r = try TestSupport.python(Self.dequantPeer, ["check", Self.golden + "/\(name)/model.safetensors", dir + "/d/model.safetensors"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        r = try TestSupport.ftq(["inspect", dir + "/d", "--json"])
        let doc = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        let tensors = doc["tensors"] as! [[String: Any]]
        #expect(tensors.count == 21 && tensors.allSatisfy { $0["dtype"] as? String == "BF16" })
        #expect(try TestSupport.ftq(["verify", dir + "/d"]).status == 0)
        // --dtype f32 to a single file.
        r = try TestSupport.ftq(["dequantize", Self.golden + "/\(name)/model.safetensors", "--dtype", "f32", "-o", dir + "/f.safetensors", "-q"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.python(Self.dequantPeer, ["check", Self.golden + "/\(name)/model.safetensors", dir + "/f.safetensors", "f32"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
    }

    /// A safetensors file from (name, dtype, shape, bytes), in the given order.
    static func safetensors(_ tensors: [(String, String, [Int], [UInt8])], to path: String) {
        var header = "{"
        var data: [UInt8] = []
        for (k, (name, dtype, shape, bytes)) in tensors.enumerated() {
            header += (k > 0 ? "," : "") + "\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":[\(data.count),\(data.count + bytes.count)]}"
            data += bytes
        }
        header += "}"
        let h = Array(header.utf8)
        let bytes = withUnsafeBytes(of: UInt64(h.count).littleEndian, Array.init) + h + data
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }

    @Test func malformedQuantStatesAreRefused() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let f32 = { (n: Int) in [UInt8](repeating: 0, count: 4 * n) }
        func state(_ s: String) -> (String, String, [Int], [UInt8]) { ("w.weight.quant_state.bitsandbytes__nf4", "U8", [s.utf8.count], Array(s.utf8)) }
        let good = #"{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [2, 64]}"#
        let base: [(String, String, [Int], [UInt8])] = [
            ("w.weight", "U8", [64, 1], [UInt8](repeating: 0x77, count: 64)),
            ("w.weight.absmax", "F32", [2], f32(2)),
            ("w.weight.quant_map", "F32", [16], f32(16)),
        ]
        Self.safetensors(base + [state(good)], to: dir + "/ok.safetensors")
        #expect(try TestSupport.ftq(["dequantize", dir + "/ok.safetensors", "-o", dir + "/ok-out.safetensors", "-q"]).status == 0)
        let cases: [([(String, String, [Int], [UInt8])], String)] = [
            (base + [state(#"{"quant_type": "nf4", "blocksize": 48, "dtype": "bfloat16", "shape": [2, 64]}"#)], "blocksize 48"),
            (base + [state(#"{"quant_type": "fp4", "blocksize": 64, "dtype": "bfloat16", "shape": [2, 64]}"#)], "quant_type"),
            (base + [state(#"{"quant_type": "nf4", "blocksize": 64, "dtype": "int8", "shape": [2, 64]}"#)], "dtype"),
            (base + [state(#"{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [4, 64]}"#)], "bytes"),
            (base + [state(#"{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [-2, 64]}"#)], "non-negative"),
            (base + [state(#"{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [4611686018427387904, 4]}"#)], "overflow"),
            (base + [state(#"{"quant_type": "nf4", "#)], "JSON"),
            (Array(base.prefix(2)) + [state(good)], "quant_map"),
            ([base[0], ("w.weight.absmax", "F32", [3], f32(3)), base[2], state(good)], "absmax"),
            (base + [state(#"{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [2, 64], "nested_offset": 1.0, "nested_blocksize": 256}"#)], "absmax"),
        ]
        for (k, (tensors, words)) in cases.enumerated() {
            let path = dir + "/bad\(k).safetensors"
            Self.safetensors(tensors, to: path)
            let r = try TestSupport.ftq(["dequantize", path, "-o", dir + "/out\(k).safetensors"])
            #expect(r.status == 3, "case \(k): \(r.stderr)")
            #expect(r.stderr.contains("[dequantize.bnb-state]") || r.stderr.contains("[convert.size-overflow]"), "case \(k): \(r.stderr)")
            #expect(r.stderr.lowercased().contains(words.lowercased()), "case \(k) (\(words)): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/out\(k).safetensors"))
        }
    }
}
