import Foundation
import Testing

/// GGUF files quantized by llama.cpp itself (testdata/llamacpp/, made by
/// tools/golden/make_llamacpp_gguf.py): `ftq inspect` reports every quantized tensor as
/// gguf-py's GGUFReader saw it (NAME.expected.json), and `ftq convert` refuses them cleanly.
@Suite struct LlamaCppGGUFTests {
    /// A fixture, the llama.cpp file type it was quantized to and the ggml types llama.cpp chose.
    struct Fixture: CustomTestStringConvertible, Sendable {
        var name: String
        var fileType: Int
        var types: Set<String>
        var testDescription: String { name }

        var path: String { TestSupport.testdata("llamacpp/\(name).gguf") }
        var expectationPath: String { TestSupport.testdata("llamacpp/\(name).expected.json") }
    }

    static let fixtures: [Fixture] = [
        // Q4_K_M: Q4_K by default, Q6_K for output and the last attn_v, ffn_down (288-element
        // rows, not a multiple of 256) falls back to Q5_0 and Q8_0; norms stay F32.
        Fixture(name: "tiny-llama-Q4_K_M", fileType: 15, types: ["Q4_K", "Q6_K", "Q5_0", "Q8_0", "F32"]),
        // Q4_0: Q4_0 everywhere but output (Q6_K) and the norms (F32).
        Fixture(name: "tiny-llama-Q4_0", fileType: 2, types: ["Q4_0", "Q6_K", "F32"]),
    ]

    /// Elements and bytes per block of the ggml types in the fixtures (ggml-common.h).
    static let blocks: [String: (elements: Int, bytes: Int)] = [
        "F32": (1, 4), "Q4_0": (32, 18), "Q5_0": (32, 22), "Q8_0": (32, 34),
        "Q4_K": (256, 144), "Q6_K": (256, 210),
    ]

    /// gguf-py's value type names, as `ftq inspect` spells them.
    static let valueTypes: [String: String] = [
        "UINT8": "u8", "INT8": "i8", "UINT16": "u16", "INT16": "i16", "UINT32": "u32", "INT32": "i32",
        "FLOAT32": "f32", "BOOL": "bool", "STRING": "string", "UINT64": "u64", "INT64": "i64", "FLOAT64": "f64",
    ]

    static func ftqTypeName(_ pyName: String) -> String? {
        if pyName.hasPrefix("ARRAY["), pyName.hasSuffix("]") {
            return valueTypes[String(pyName.dropFirst(6).dropLast())].map { "array[\($0)]" }
        }
        return valueTypes[pyName]
    }

    static func object(_ data: Data) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    static func expectation(_ f: Fixture) throws -> [String: Any] {
        try object(try Data(contentsOf: URL(fileURLWithPath: f.expectationPath)))
    }

    static func ints(_ v: Any?) -> [Int]? { (v as? [Any])?.compactMap { ($0 as? NSNumber)?.intValue } }
    static func int(_ v: Any?) -> Int? { (v as? NSNumber)?.intValue }

    /// The fixture is the file the expectation describes (not a pointer file or a re-encoded copy).
    @Test(arguments: fixtures) func fixtureIsIntact(_ f: Fixture) throws {
        let exp = try Self.expectation(f)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: f.path)[.size] as? NSNumber)
        #expect(size.intValue == Self.int(exp["size"]))
        let head = try FileHandle(forReadingFrom: URL(fileURLWithPath: f.path)).read(upToCount: 4)
        #expect(head == Data("GGUF".utf8))
    }

    /// Every tensor's name, ggml type, row-major shape, absolute offset and size, in file order.
    @Test(arguments: fixtures) func inspectJSONListsQuantizedTensors(_ f: Fixture) throws {
        let exp = try Self.expectation(f)
        let r = try TestSupport.ftq(["inspect", f.path, "--json"])
        try #require(r.status == 0, "ftq inspect exited \(r.status): \(r.stderr)")
        let doc = try Self.object(r.stdoutData)
        #expect(doc["format"] as? String == "gguf")
        #expect(Self.int(doc["version"]) == Self.int(exp["gguf_version"]))

        let got = try #require(doc["tensors"] as? [[String: Any]])
        let want = try #require(exp["tensors"] as? [[String: Any]])
        #expect(want.count == Self.int(exp["tensor_count"]))
        try #require(got.count == want.count, "ftq lists \(got.count) tensors, gguf-py \(want.count)")
        for (g, w) in zip(got, want) {
            let name = try #require(w["name"] as? String)
            #expect(g["name"] as? String == name)
            #expect(g["dtype"] as? String == w["ggml_type"] as? String, "\(name)")
            #expect(Self.ints(g["shape"]) == Self.ints(w["shape"]), "\(name)")
            #expect(Self.int(g["offset"]) == Self.int(w["offset"]), "\(name)")
            #expect(Self.int(g["nbytes"]) == Self.int(w["nbytes"]), "\(name)")
            #expect(g["file"] as? String == f.path, "\(name)")
        }

        // The same facts from ggml's block sizes and the GGUF layout, independently of gguf-py.
        let fileSize = try #require(Self.int(exp["size"]))
        let dataStart = try #require(Self.int(exp["data_offset"]))
        var end = dataStart
        for g in got {
            let name = g["name"] as? String ?? "?"
            let dtype = try #require(g["dtype"] as? String)
            let block = try #require(Self.blocks[dtype], "unexpected type \(dtype) for \(name)")
            let shape = try #require(Self.ints(g["shape"]))
            let offset = try #require(Self.int(g["offset"])), nbytes = try #require(Self.int(g["nbytes"]))
            #expect(shape.last! % block.elements == 0, "\(name): rows are whole \(dtype) blocks")
            #expect(nbytes == shape.reduce(1, *) / block.elements * block.bytes, "\(name)")
            #expect(offset % 32 == 0 && offset >= end, "\(name) at \(offset)")
            end = offset + nbytes
        }
        #expect(end <= fileSize)

        let byType = try #require(doc["parameters_by_dtype"] as? [String: Any])
        let wantByType = try #require(exp["parameters_by_type"] as? [String: Any])
        #expect(Set(byType.keys) == f.types)
        #expect(Set(wantByType.keys) == f.types)
        for (k, v) in wantByType { #expect(Self.int(byType[k]) == Self.int(v), "\(k)") }
        #expect(Self.int(doc["total_parameters"]) == Self.int(exp["total_parameters"]))
        #expect(Self.int(doc["total_bytes"]) == Self.int(exp["total_bytes"]))
    }

    /// Metadata keys with gguf-py's value types; scalars equal; arrays complete.
    @Test(arguments: fixtures) func inspectJSONMetadataMatchesGGUFPy(_ f: Fixture) throws {
        let exp = try Self.expectation(f)
        let r = try TestSupport.ftq(["inspect", f.path, "--json"])
        try #require(r.status == 0, "ftq inspect exited \(r.status): \(r.stderr)")
        let expTypes = try #require(exp["metadata_types"] as? [String: Any])
        let keys = try #require(exp["metadata_keys"] as? [String])
        #expect(Set(keys) == Set(expTypes.keys))

        let doc = try Self.object(r.stdoutData)
        let types = try #require(doc["metadata_types"] as? [String: Any])
        #expect(Set(types.keys) == Set(keys))
        for (key, py) in expTypes {
            let want = try #require(Self.ftqTypeName(py as? String ?? ""), "gguf-py type \(py) of \(key)")
            #expect(types[key] as? String == want, "\(key)")
        }

        let metadata = try #require(doc["metadata"] as? [String: Any])
        #expect(Set(metadata.keys) == Set(keys))
        let scalars = try #require(exp["metadata_scalars"] as? [String: Any])
        for (key, want) in scalars {
            let got = metadata[key]
            if let s = want as? String {
                #expect(got as? String == s, "\(key)")
            } else if expTypes[key] as? String == "BOOL" {
                #expect((got as? NSNumber)?.boolValue == (want as? NSNumber)?.boolValue, "\(key)")
            } else if expTypes[key] as? String == "FLOAT32" {
                let g = try #require((got as? NSNumber)?.doubleValue, "\(key)")
                #expect(Float(g) == Float(try #require((want as? NSNumber)?.doubleValue)), "\(key)")
            } else {
                #expect((got as? NSNumber)?.int64Value == (want as? NSNumber)?.int64Value, "\(key)")
            }
        }
        let lengths = try #require(exp["metadata_array_lengths"] as? [String: Any])
        for (key, n) in lengths {
            #expect((metadata[key] as? [Any])?.count == Self.int(n), "\(key)")
        }

        // What llama.cpp's quantizer writes.
        #expect(types["general.quantization_version"] as? String == "u32")
        #expect(Self.int(metadata["general.quantization_version"]) == 2)
        #expect(types["general.file_type"] as? String == "u32")
        #expect(Self.int(metadata["general.file_type"]) == f.fileType)
        #expect(metadata["general.architecture"] as? String == "llama")
        #expect((metadata["tokenizer.ggml.tokens"] as? [Any])?.count == Self.int(metadata["llama.vocab_size"]))
    }

    /// Text mode: metadata in file order with types, one row per tensor with its dtype, shape,
    /// offset and size, then the totals.
    @Test(arguments: fixtures) func inspectTextListsQuantizedTensors(_ f: Fixture) throws {
        let exp = try Self.expectation(f)
        let r = try TestSupport.ftq(["inspect", f.path])
        try #require(r.status == 0, "ftq inspect exited \(r.status): \(r.stderr)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.contains("format:   gguf v3"))

        // Metadata in file order, each with its type: `  KEY: TYPE = VALUE`.
        let keys = try #require(exp["metadata_keys"] as? [String])
        let types = try #require(exp["metadata_types"] as? [String: Any])
        let meta = try #require(lines.firstIndex(of: "metadata: \(keys.count) entries"), "\(r.stdout)")
        try #require(lines.count > meta + keys.count)
        for (k, key) in keys.enumerated() {
            let want = "  \(key): \(Self.ftqTypeName(types[key] as? String ?? "") ?? "?") = "
            #expect(lines[meta + 1 + k].hasPrefix(want), "line \(lines[meta + 1 + k]) does not start with \(want)")
        }

        let want = try #require(exp["tensors"] as? [[String: Any]])
        #expect(lines.contains("tensors:  \(want.count)"))
        let header = try #require(lines.firstIndex { $0.hasPrefix("  name ") }, "no tensor table in:\n\(r.stdout)")
        #expect(lines[header].split(separator: " ") == ["name", "dtype", "shape", "offset", "bytes"])
        try #require(lines.count > header + want.count)
        for (k, w) in want.enumerated() {
            let cells = lines[header + 1 + k].split(separator: " ").map(String.init)
            let shape = "[" + (Self.ints(w["shape"]) ?? []).map(String.init).joined(separator: ", ") + "]"
            #expect(cells.count >= 5, "\(lines[header + 1 + k])")
            guard cells.count >= 5 else { continue }
            #expect(cells[0] == w["name"] as? String)
            #expect(cells[1] == w["ggml_type"] as? String, "\(cells[0])")
            #expect(cells[2..<(cells.count - 2)].joined(separator: " ") == shape, "\(cells[0])")
            #expect(Int(cells[cells.count - 2]) == Self.int(w["offset"]), "\(cells[0])")
            #expect(Int(cells[cells.count - 1]) == Self.int(w["nbytes"]), "\(cells[0])")
        }
        let params = try #require(lines.first { $0.hasPrefix("parameters: ") })
        #expect(params.hasPrefix("parameters: \(Self.int(exp["total_parameters"]) ?? -1) ("))
        let byType = try #require(exp["parameters_by_type"] as? [String: Any])
        for (t, n) in byType { #expect(params.contains("\(t): \(Self.int(n) ?? -1)"), "\(params)") }
        #expect(lines.contains { $0.hasPrefix("bytes:      \(Self.int(exp["total_bytes"]) ?? -1) (") })
    }

    /// Converting llama.cpp's quantized files to safetensors decodes every tensor (legacy and
    /// K-quant blocks) to exactly gguf-py's dequantized values, as float32 or as --dtype bf16;
    /// to a directory, they become a Hugging Face Llama checkpoint (names and q/k rows mapped
    /// back, formats/llama-gguf.md "GGUF to Hugging Face"); each output verifies against its
    /// manifest.
    @Test(arguments: fixtures) func convertToSafetensorsDecodesLikeGGUFPy(_ f: Fixture) throws {
        for (out, dtype) in [("out.safetensors", "f32"), ("out-bf16.safetensors", "bf16"), ("hf", "f32")] {
            let dir = try TestSupport.tempDir("llamacpp-convert")
            defer { TestSupport.cleanup(dir) }
            var args = ["convert", f.path, "-o", dir + "/" + out]
            if dtype != "f32" { args += ["--dtype", dtype] }
            let r = try TestSupport.ftq(args)
            #expect(r.status == 0, "\(out): exit \(r.status), stderr: \(r.stderr)")
            let c = out == "hf"
                ? try TestSupport.python(TestSupport.tool("interop/gguf_to_hf_peer.py"), ["check", f.path, dir + "/hf", "keep"])
                : try TestSupport.python(TestSupport.tool("interop/dequant_peer.py"), ["check", f.path, dir + "/" + out, dtype])
            #expect(c.status == 0, "\(out): \(c.stdout)\(c.stderr)")
            #expect(try TestSupport.ftq(["verify", dir + "/" + out]).status == 0)
        }
    }

    /// GGUF -> GGUF copies quantized tensors unchanged: llama.cpp's own file comes back byte for
    /// byte; with --dtype f16 only the F32 tensors change, and general.file_type (a mixed
    /// quantized type) is kept.
    @Test(arguments: fixtures) func ggufToGGUFKeepsQuantizedTensors(_ f: Fixture) throws {
        let dir = try TestSupport.tempDir("llamacpp-convert")
        defer { TestSupport.cleanup(dir) }
        var r = try TestSupport.ftq(["convert", f.path, "-o", dir + "/same.gguf"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: f.path)) == Data(contentsOf: URL(fileURLWithPath: dir + "/same.gguf")))
        r = try TestSupport.ftq(["convert", f.path, "-o", dir + "/f16.gguf", "--dtype", "f16"])
        #expect(r.status == 0, "\(r.stderr)")
        r = try TestSupport.ftq(["inspect", dir + "/f16.gguf", "--json"])
        let doc = try #require(try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any])
        let types = Set((doc["tensors"] as? [[String: Any]] ?? []).compactMap { $0["dtype"] as? String })
        #expect(!types.contains("F32") && types.contains("F16"))
        #expect(types.isSuperset(of: Set(f.types.filter { $0 != "F32" })))
        #expect(Self.int((doc["metadata"] as? [String: Any])?["general.file_type"]) == f.fileType)
    }
}
