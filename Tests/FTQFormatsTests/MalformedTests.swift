import Foundation
import Testing
import FTQCore
import FTQFormats
#if canImport(Glibc)
import Glibc
#endif

/// One input of testdata/malformed/ and what `ModelOpener.open` must make of it.
struct MalformedCase: Sendable, CustomTestStringConvertible {
    /// Path relative to testdata/malformed/ (a file, or a directory ending in "/").
    let path: String
    /// The exact `FTQError.code`, or "ok" for a valid control.
    let code: String
    /// Text the error (file and message) must contain: the tensor, key, shard or byte offset.
    let mentions: [String]

    init(_ path: String, _ code: String, _ mentions: [String] = []) {
        self.path = path
        self.code = code
        self.mentions = mentions
    }

    var testDescription: String { path }
}

enum MalformedCorpus {
    static let root = FormatTestSupport.testdata("malformed")

    static func path(_ rel: String) -> String { root + "/" + rel }

    /// The entries of testdata/malformed/README.md: `- `NAME` — rule — `CODE``.
    static func readmeEntries() throws -> [(name: String, code: String)] {
        let text = try String(contentsOfFile: path("README.md"), encoding: .utf8)
        return text.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("- `") else { return nil }
            let quoted = line.split(separator: "`", omittingEmptySubsequences: false)
            guard quoted.count >= 3 else { return nil }
            return (String(quoted[1]), String(quoted[quoted.count - 2]))
        }
    }

    static let cases: [MalformedCase] = [
        // safetensors
        .init("ok_valid.safetensors", "ok"),
        .init("st_empty.safetensors", "safetensors.truncated", ["0 bytes", "truncated"]),
        .init("st_7_bytes.safetensors", "safetensors.truncated", ["7 bytes", "truncated"]),
        .init("st_git_lfs_pointer.safetensors", "safetensors.git-lfs-pointer", ["git-lfs pointer", "git lfs pull"]),
        .init("st_header_over_cap.safetensors", "safetensors.header-too-large", ["268435457", "268435456"]),
        .init("st_header_len_max.safetensors", "safetensors.header-too-large", ["18446744073709551615"]),
        .init("st_header_past_eof.safetensors", "safetensors.truncated", ["1000 bytes", "only 54", "truncated"]),
        .init("st_header_not_brace.safetensors", "safetensors.header-start", ["'{'"]),
        .init("st_header_leading_space.safetensors", "safetensors.header-start", ["'{'"]),
        .init("st_json_syntax.safetensors", "json.syntax", ["byte 5"]),
        .init("st_json_eof.safetensors", "json.eof", ["byte 19"]),
        .init("st_json_trailing_comma.safetensors", "json.syntax", ["byte 54"]),
        .init("st_json_trailing_data.safetensors", "json.trailing", ["byte 54"]),
        .init("st_json_leading_zero.safetensors", "json.syntax", ["byte 30", "leading zero"]),
        .init("st_json_nan.safetensors", "json.syntax", ["byte 29"]),
        .init("st_json_control_char.safetensors", "json.control-character", ["byte 3"]),
        .init("st_json_lone_surrogate.safetensors", "json.surrogate", ["byte 9"]),
        .init("st_invalid_utf8.safetensors", "json.utf8", ["byte 6", "UTF-8"]),
        .init("st_invalid_utf8_overlong.safetensors", "json.utf8", ["byte 7", "UTF-8"]),
        .init("st_invalid_utf8_surrogate.safetensors", "json.utf8", ["byte 7", "UTF-8"]),
        .init("st_deeply_nested.safetensors", "json.too-deep", ["byte 79", "64"]),
        .init("st_duplicate_tensor.safetensors", "safetensors.duplicate-key", ["\"a\"", "byte 54"]),
        .init("st_duplicate_tensor_escaped.safetensors", "safetensors.duplicate-key", ["\"ab\"", "byte 55"]),
        .init("st_duplicate_tensor_newline.safetensors", "safetensors.duplicate-key", ["byte 66"]),
        .init("st_duplicate_field.safetensors", "safetensors.duplicate-key", ["\"dtype\"", "byte 20"]),
        .init("st_duplicate_metadata_key.safetensors", "safetensors.duplicate-key", ["\"format\"", "byte 31"]),
        .init("st_metadata_not_object.safetensors", "safetensors.bad-metadata", ["__metadata__", "a string"]),
        .init("st_metadata_number_value.safetensors", "safetensors.bad-metadata", ["\"step\"", "a number"]),
        .init("st_metadata_nested_value.safetensors", "safetensors.bad-metadata", ["\"cfg\"", "an object"]),
        .init("ok_nfc_nfd_names.safetensors", "ok"),
        .init("st_empty_name.safetensors", "safetensors.empty-name", ["empty name"]),
        .init("st_entry_not_object.safetensors", "safetensors.bad-entry", ["\"a\"", "an array"]),
        .init("st_unknown_field.safetensors", "safetensors.unknown-field", ["\"a\"", "\"quant\""]),
        .init("st_missing_dtype.safetensors", "safetensors.bad-entry", ["\"a\"", "\"dtype\""]),
        .init("st_missing_shape.safetensors", "safetensors.bad-entry", ["\"a\"", "\"shape\""]),
        .init("st_missing_offsets.safetensors", "safetensors.bad-entry", ["\"a\"", "\"data_offsets\""]),
        .init("st_unknown_dtype.safetensors", "safetensors.unknown-dtype", ["\"a\"", "\"F8\""]),
        .init("st_lowercase_dtype.safetensors", "safetensors.unknown-dtype", ["\"a\"", "\"f32\""]),
        .init("st_dtype_not_string.safetensors", "safetensors.unknown-dtype", ["\"a\"", "a number"]),
        .init("st_shape_not_array.safetensors", "safetensors.bad-shape", ["\"a\"", "a string"]),
        .init("st_shape_negative.safetensors", "safetensors.bad-shape", ["\"a\"", "-2"]),
        .init("st_shape_minus_zero.safetensors", "safetensors.bad-shape", ["\"a\"", "-0"]),
        .init("st_shape_fraction.safetensors", "safetensors.bad-shape", ["\"a\"", "2.0"]),
        .init("st_shape_exponent.safetensors", "safetensors.bad-shape", ["\"a\"", "1e2"]),
        .init("st_shape_string_dim.safetensors", "safetensors.bad-shape", ["\"a\"", "a string"]),
        .init("st_shape_dim_over_int64.safetensors", "safetensors.bad-shape", ["\"a\"", "18446744073709551615"]),
        .init("st_shape_dim_over_uint64.safetensors", "safetensors.bad-shape", ["\"a\"", "99999999999999999999999"]),
        .init("st_offsets_one.safetensors", "safetensors.bad-offsets", ["\"a\"", "data_offsets"]),
        .init("st_offsets_three.safetensors", "safetensors.bad-offsets", ["\"a\"", "data_offsets"]),
        .init("st_offsets_negative.safetensors", "safetensors.bad-offsets", ["\"a\"", "data_offsets"]),
        .init("st_offsets_fraction.safetensors", "safetensors.bad-offsets", ["\"a\"", "data_offsets"]),
        .init("st_offsets_not_array.safetensors", "safetensors.bad-offsets", ["\"a\"", "data_offsets"]),
        .init("st_offsets_reversed.safetensors", "safetensors.bad-offsets", ["\"a\"", "[8, 0]"]),
        .init("st_size_mismatch.safetensors", "safetensors.size-mismatch", ["\"a\"", "12 bytes", "[0, 8]"]),
        .init("st_count_overflow.safetensors", "safetensors.size-overflow", ["\"a\"", "4294967296"]),
        .init("st_bytes_overflow.safetensors", "safetensors.size-overflow", ["\"a\"", "4611686018427387904", "F32"]),
        .init("st_f4_odd_count.safetensors", "safetensors.partial-byte", ["\"a\"", "3 elements of F4"]),
        .init("st_f6_partial.safetensors", "safetensors.partial-byte", ["\"a\"", "F6_E2M3"]),
        .init("ok_f4_even_count.safetensors", "ok"),
        .init("st_hole.safetensors", "safetensors.hole", ["\"b\"", "byte 16", "8 bytes"]),
        .init("st_hole_at_start.safetensors", "safetensors.hole", ["\"a\"", "byte 8"]),
        .init("st_overlap.safetensors", "safetensors.overlap", ["\"b\"", "[4, 12)", "8"]),
        .init("st_overlap_same_span.safetensors", "safetensors.overlap", ["\"b\"", "[0, 8)"]),
        .init("st_trailing_bytes.safetensors", "safetensors.trailing-bytes", ["4 bytes"]),
        .init("st_tensor_past_eof.safetensors", "safetensors.truncated", ["\"b\"", "byte 16", "only 12"]),
        .init("st_no_data_section.safetensors", "safetensors.truncated", ["\"a\"", "byte 8", "only 0"]),

        // GGUF
        .init("ok_valid.gguf", "ok"),
        .init("ok_chat_template_jinja.gguf", "ok"),
        .init("ok_nested_arrays_depth4.gguf", "ok"),
        .init("gguf_empty.gguf", "gguf.truncated", ["0 bytes"]),
        .init("gguf_truncated_magic.gguf", "gguf.truncated", ["3 bytes"]),
        .init("gguf_bad_magic.gguf", "gguf.bad-magic", ["47 47 55 58"]),
        .init("gguf_safetensors_named_gguf.gguf", "gguf.bad-magic", ["magic"]),
        .init("gguf_git_lfs_pointer.gguf", "gguf.git-lfs-pointer", ["git-lfs pointer", "git lfs pull"]),
        .init("legacy_ggjt.bin", "gguf.legacy-format", ["tjgg"]),
        .init("legacy_ggml.bin", "gguf.legacy-format", ["lmgg"]),
        .init("gguf_legacy_GGML_magic.gguf", "gguf.legacy-format", ["GGML"]),
        .init("gguf_version_1.gguf", "gguf.unsupported-version", ["version 1"]),
        .init("gguf_version_big_endian.gguf", "gguf.big-endian", ["big-endian"]),
        .init("gguf_version_4.gguf", "gguf.unsupported-version", ["version 4"]),
        .init("gguf_version_0.gguf", "gguf.unsupported-version", ["version 0"]),
        .init("gguf_truncated_in_version.gguf", "gguf.truncated", ["offset 4"]),
        .init("gguf_truncated_in_counts.gguf", "gguf.truncated", ["offset 16"]),
        .init("gguf_truncated_in_kv_value.gguf", "gguf.truncated", ["offset 48"]),
        .init("gguf_truncated_in_string.gguf", "gguf.bad-string", ["\"general.name\"", "byte 48", "20 bytes"]),
        .init("gguf_truncated_in_tensor_info.gguf", "gguf.truncated", ["offset 57"]),
        .init("gguf_truncated_data.gguf", "gguf.tensor-out-of-bounds", ["\"b\"", "[224, 256)", "236"]),
        .init("gguf_n_kv_2pow63.gguf", "gguf.bad-count", ["key-value count", "9223372036854775808"]),
        .init("gguf_n_kv_huge.gguf", "gguf.bad-count", ["4611686018427387904 key-values"]),
        .init("gguf_n_tensors_2pow63.gguf", "gguf.bad-count", ["tensor count", "9223372036854775808"]),
        .init("gguf_n_tensors_wrap.gguf", "gguf.bad-count", ["768614336404564651 tensors"]),
        .init("gguf_n_tensors_exceeds_room.gguf", "gguf.bad-count", ["5 tensors", "at most 4"]),
        .init("gguf_key_len_huge.gguf", "gguf.bad-string", ["key at byte 24", "1099511627776"]),
        .init("gguf_string_len_max.gguf", "gguf.bad-string", ["\"general.name\"", "byte 48", "18446744073709551615"]),
        .init("gguf_array_len_2pow63.gguf", "gguf.bad-array", ["\"a\"", "byte 41", "9223372036854775808"]),
        .init("gguf_array_strings_huge.gguf", "gguf.bad-array", ["\"tokenizer.ggml.tokens\"", "1099511627776"]),
        .init("gguf_array_too_deep.gguf", "gguf.array-too-deep", ["\"nested\"", "4"]),
        .init("gguf_array_nested_1000.gguf", "gguf.array-too-deep", ["\"nested\""]),
        .init("gguf_unknown_value_type.gguf", "gguf.unknown-value-type", ["\"general.x\"", "13"]),
        .init("gguf_unknown_value_type_max.gguf", "gguf.unknown-value-type", ["\"general.x\"", "4294967295"]),
        .init("gguf_unknown_array_type.gguf", "gguf.unknown-value-type", ["\"general.x\"", "element type 13"]),
        .init("gguf_bool_2.gguf", "gguf.bad-bool", ["\"general.flag\"", "byte 2", "at 93"]),
        .init("gguf_bool_array_2.gguf", "gguf.bad-bool", ["\"general.flags\"", "at 108"]),
        .init("ok_nfc_nfd_keys.gguf", "ok"),
        .init("gguf_empty_key.gguf", "gguf.empty-key", ["byte 24"]),
        .init("gguf_duplicate_key.gguf", "gguf.duplicate-key", ["\"general.name\"", "byte 102"]),
        .init("gguf_duplicate_key_control_chars.gguf", "gguf.duplicate-key", ["byte 57"]),
        .init("gguf_invalid_utf8_key.gguf", "gguf.bad-string", ["key at byte 24", "UTF-8"]),
        .init("gguf_invalid_utf8_value.gguf", "gguf.bad-string", ["\"general.name\"", "byte 93", "UTF-8"]),
        .init("gguf_invalid_utf8_tensor_name.gguf", "gguf.bad-string", ["tensor name at byte 69", "UTF-8"]),
        .init("gguf_alignment_u64.gguf", "gguf.bad-alignment", ["general.alignment", "u64"]),
        .init("gguf_alignment_string.gguf", "gguf.bad-alignment", ["general.alignment", "string"]),
        .init("gguf_alignment_zero.gguf", "gguf.bad-alignment", ["general.alignment 0"]),
        .init("gguf_alignment_not_pow2.gguf", "gguf.bad-alignment", ["general.alignment 48"]),
        .init("gguf_alignment_too_large.gguf", "gguf.bad-alignment", ["general.alignment 2147483648"]),
        .init("gguf_empty_tensor_name.gguf", "gguf.empty-name", ["byte 69"]),
        .init("gguf_duplicate_tensor.gguf", "gguf.duplicate-tensor", ["\"a\"", "byte 102"]),
        .init("gguf_n_dims_5.gguf", "gguf.too-many-dims", ["\"a\"", "5 dimensions"]),
        .init("gguf_n_dims_9.gguf", "gguf.too-many-dims", ["\"a\"", "9 dimensions"]),
        .init("gguf_n_dims_max.gguf", "gguf.too-many-dims", ["\"a\"", "4294967295 dimensions"]),
        .init("gguf_dim_over_int64.gguf", "gguf.bad-dim", ["\"a\"", "9223372036854775808"]),
        .init("gguf_ne_product_overflow.gguf", "gguf.size-overflow", ["\"a\"", "element count"]),
        .init("gguf_nbytes_overflow.gguf", "gguf.size-overflow", ["\"a\"", "byte size"]),
        .init("gguf_unknown_type.gguf", "gguf.unknown-type", ["\"a\"", "99"]),
        .init("gguf_removed_type_31.gguf", "gguf.unknown-type", ["\"a\"", "31", "Q4_0_4_4", "removed"]),
        .init("gguf_removed_type_4.gguf", "gguf.unknown-type", ["\"a\"", "Q4_2"]),
        .init("gguf_q4_0_row_33.gguf", "gguf.bad-row-size", ["\"w\"", "33", "Q4_0", "32"]),
        .init("gguf_q4_0_scalar.gguf", "gguf.bad-row-size", ["\"w\"", "row length 1"]),
        .init("gguf_misaligned.gguf", "gguf.misaligned", ["\"a\"", "offset 4", "alignment 32"]),
        .init("gguf_misaligned_custom.gguf", "gguf.misaligned", ["\"a\"", "offset 32", "alignment 64"]),
        .init("gguf_offset_over_int64.gguf", "gguf.tensor-out-of-bounds", ["\"a\"", "9223372036854775808"]),
        .init("gguf_offset_wraps.gguf", "gguf.tensor-out-of-bounds", ["\"a\"", "offset"]),
        .init("gguf_offset_past_eof.gguf", "gguf.tensor-out-of-bounds", ["\"a\"", "[4224, 4240)", "192"]),
        .init("gguf_tensor_past_eof_huge.gguf", "gguf.tensor-out-of-bounds", ["\"a\"", "4398046511232", "192"]),
        .init("gguf_overlap.gguf", "gguf.overlap", ["\"a\"", "\"b\""]),
        .init("gguf_overlap_same_offset.gguf", "gguf.overlap", ["\"a\"", "\"b\""]),

        // split GGUF
        .init("ok_split/m-00001-of-00002.gguf", "ok"),
        .init("ok_split/m-00002-of-00002.gguf", "ok"),
        .init("split_missing/m-00001-of-00002.gguf", "gguf.split-missing", ["part 2 of 2", "split_missing/m-00002-of-00002.gguf"]),
        .init("split_wrong_no/m-00001-of-00002.gguf", "gguf.split-mismatch", ["split_wrong_no/m-00002-of-00002.gguf", "part 1 of 2"]),
        .init("split_tensor_count/m-00001-of-00002.gguf", "gguf.split-mismatch", ["split.tensors.count is 3", "2 tensors"]),
        .init("split_count_vs_name/m-00001-of-00002.gguf", "gguf.split-mismatch", ["split.count is 3", "2 parts"]),
        .init("split_bad_name/model.gguf", "gguf.split-name", ["split_bad_name/model.gguf", "NAME-NNNNN-of-MMMMM.gguf"]),
        .init("split_duplicate_tensor/m-00001-of-00002.gguf", "model.duplicate-tensor", ["\"a\""]),
        .init("split_lfs_part/m-00001-of-00002.gguf", "gguf.git-lfs-pointer", ["split_lfs_part/m-00002-of-00002.gguf"]),
        .init("split_bad_part/m-00001-of-00002.gguf", "gguf.tensor-out-of-bounds", ["split_bad_part/m-00002-of-00002.gguf", "\"b\""]),

        // sharded safetensors directories
        .init("ok_sharded/", "ok"),
        .init("sharded_missing_shard/", "index.missing-shard", ["model-00002-of-00002.safetensors", "\"b\""]),
        .init("sharded_tensor_not_in_shard/", "index.tensor-not-in-shard", ["\"c\"", "model-00002-of-00002.safetensors"]),
        .init("sharded_tensor_in_other_shard/", "index.tensor-in-two-shards",
              ["\"b\"", "sharded_tensor_in_other_shard/model-00001-of-00002.safetensors", "places it in model-00002-of-00002.safetensors"]),
        .init("sharded_stale_index/", "index.unlisted-tensor", ["\"c\"", "sharded_stale_index/model-00001-of-00002.safetensors"]),
        .init("sharded_stray_single_file/", "index.stray-single-file", ["model.safetensors", "model.safetensors.index.json"]),
        .init("sharded_dotdot/", "index.shard-outside-directory", ["\"../x.safetensors\""]),
        .init("sharded_absolute/", "index.shard-outside-directory", ["\"/etc/passwd\""]),
        .init("sharded_backslash/", "index.shard-outside-directory", ["x.safetensors"]),
        .init("sharded_empty_shard_name/", "index.shard-outside-directory", ["\"\""]),
        .init("sharded_weight_map_array/", "index.bad-weight-map", ["weight_map"]),
        .init("sharded_weight_map_missing/", "index.bad-weight-map", ["weight_map"]),
        .init("sharded_weight_map_number/", "index.bad-weight-map", ["weight_map[\"a\"]", "a number"]),
        .init("sharded_index_not_object/", "index.bad-weight-map", ["weight_map"]),
        .init("sharded_duplicate_key/", "index.duplicate-key", ["\"a\"", "byte 93"]),
        .init("sharded_duplicate_top_key/", "index.duplicate-key", ["\"weight_map\"", "byte 55"]),
        .init("sharded_index_bad_json/", "json.syntax", ["model.safetensors.index.json", "byte 54"]),
        .init("sharded_bad_shard/", "safetensors.trailing-bytes", ["sharded_bad_shard/model-00002-of-00002.safetensors", "4 bytes"]),
        .init("sharded_no_index/", "index.missing", ["2 .safetensors files", "model.safetensors.index.json"]),
        .init("sharded_ambiguous_index/", "index.ambiguous", ["a.safetensors.index.json", "b.safetensors.index.json"]),
        .init("sharded_nfd_name_mismatch/", "index.unlisted-tensor",
              ["sharded_nfd_name_mismatch/model-00001-of-00002.safetensors", "not in the index"]),
        .init("no_model/", "input.no-model", ["no .safetensors file"]),
    ]

    /// The characters an error line must not contain: C0 controls and DEL.
    static func controlCharacters(in s: String) -> [UInt32] {
        s.unicodeScalars.map(\.value).filter { $0 < 0x20 || $0 == 0x7f }
    }

    /// Checks `body` throws an FTQError with `code`, naming `mentions`, on one clean line.
    static func expectError(_ code: String, mentions: [String] = [], sourceLocation: SourceLocation = #_sourceLocation,
                            _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("accepted; expected \(code)", sourceLocation: sourceLocation)
        } catch let e as FTQError {
            #expect(e.code == code, "\(e.description)", sourceLocation: sourceLocation)
            #expect(e.kind == (code.hasPrefix("io.") ? .io : .invalidInput), sourceLocation: sourceLocation)
            #expect(e.file != nil, "the error names no file: \(e.message)", sourceLocation: sourceLocation)
            for m in mentions {
                #expect(e.description.contains(m), "\"\(m)\" not in: \(e.description)", sourceLocation: sourceLocation)
            }
            #expect(controlCharacters(in: e.description).isEmpty,
                    "the error is not one clean line: \(e.description.debugDescription)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("threw a non-FTQError: \(error)", sourceLocation: sourceLocation)
        }
    }

    static func tempDir() throws -> String {
        let p = FileManager.default.temporaryDirectory.appendingPathComponent("ftq-malformed-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    static func copyItem(_ rel: String, into dir: String) throws -> String {
        let name = rel.hasSuffix("/") ? String(rel.dropLast()) : rel
        let dst = dir + "/" + (name as NSString).lastPathComponent
        try FileManager.default.copyItem(atPath: path(name), toPath: dst)
        return dst
    }

    /// A valid safetensors file: tensors a (F32 [2]) and b (F16 [2, 2]) and __metadata__.
    static func validSafetensors() -> [UInt8] {
        var header = Array(#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[2,2],"data_offsets":[8,16]}}"#.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var out: [UInt8] = []
        var n = UInt64(header.count)
        for _ in 0..<8 { out.append(UInt8(n & 0xff)); n >>= 8 }
        return out + header + (0..<16).map { UInt8($0) }
    }
}

@Suite struct MalformedTests {
    @Test func readmeListsEveryCaseWithItsCode() throws {
        let readme = try MalformedCorpus.readmeEntries()
        let byName = Dictionary(readme.map { ($0.name, $0.code) }, uniquingKeysWith: { a, _ in a })
        #expect(byName.count == readme.count, "README names an input twice")
        let tested = Dictionary(MalformedCorpus.cases.map { ($0.path, $0.code) }, uniquingKeysWith: { a, _ in a })
        #expect(tested.count == MalformedCorpus.cases.count, "a case is listed twice")
        for (name, code) in readme {
            #expect(tested[name] == code, "README: \(name) -> \(code); tests: \(tested[name] ?? "none")")
        }
        for (name, _) in tested { #expect(byName[name] != nil, "\(name) is tested but not in README.md") }
    }

    @Test func everyCorpusFileIsListedAndSmall() throws {
        let readme = try MalformedCorpus.readmeEntries().map(\.name)
        let fm = FileManager.default
        var total = 0
        for top in try fm.contentsOfDirectory(atPath: MalformedCorpus.root) where top != "README.md" {
            let full = MalformedCorpus.path(top)
            var isDir: ObjCBool = false
            _ = fm.fileExists(atPath: full, isDirectory: &isDir)
            #expect(readme.contains { $0 == top || $0.hasPrefix(top + "/") }, "\(top) is not in README.md")
            let files = isDir.boolValue ? try fm.contentsOfDirectory(atPath: full).map { full + "/" + $0 } : [full]
            for f in files {
                let attrs = try fm.attributesOfItem(atPath: f)
                #expect(attrs[.type] as? FileAttributeType == .typeRegular, "\(f) is not a regular file")
                let size = (attrs[.size] as? NSNumber)?.intValue ?? 0
                #expect(size < 64 * 1024, "\(f) is \(size) bytes")
                total += size
            }
        }
        #expect(total < 1 << 20, "the corpus is \(total) bytes")
    }

    @Test(arguments: MalformedCorpus.cases)
    func openGivesTheExactCode(_ c: MalformedCase) throws {
        let p = MalformedCorpus.path(c.path)
        if c.code == "ok" {
            let m = try ModelOpener.open(p)
            #expect(!m.tensors.isEmpty || m.format == .gguf)
            for t in m.tensors {
                #expect(t.offset >= 0 && t.offset + t.nbytes <= m.file(of: t).size, "\(t.name) lies outside its file")
            }
            return
        }
        MalformedCorpus.expectError(c.code, mentions: c.mentions) { _ = try ModelOpener.open(p) }
    }

    @Test func validControlsReadAsWritten() throws {
        let st = try ModelOpener.open(MalformedCorpus.path("ok_valid.safetensors"))
        #expect(st.tensors.map(\.name) == ["a", "b"])
        #expect(st.tensors.map(\.shape) == [[2], [2, 2]])
        #expect(st.metadata.count == 1 && st.metadata[0].0 == "format" && st.metadata[0].1 == .string("pt"))

        let f4 = try ModelOpener.open(MalformedCorpus.path("ok_f4_even_count.safetensors"))
        #expect(f4.tensors.first?.nbytes == 3 && f4.tensors.first?.elementCount == 6)

        let g = try ModelOpener.open(MalformedCorpus.path("ok_valid.gguf"))
        #expect(g.format == .gguf && g.version == 3)
        #expect(g.tensors.map(\.name) == ["a", "b"])
        #expect(g.tensors.map(\.shape) == [[4], [2, 8]])

        let nested = try ModelOpener.open(MalformedCorpus.path("ok_nested_arrays_depth4.gguf"))
        #expect(nested.metadata.last?.0 == "nested")

        for part in ["ok_split/m-00001-of-00002.gguf", "ok_split/m-00002-of-00002.gguf"] {
            let s = try ModelOpener.open(MalformedCorpus.path(part))
            #expect(s.files.count == 2)
            #expect(s.tensors.map(\.name) == ["a", "b"])
            #expect(s.tensors.map(\.fileIndex) == [0, 1])
        }

        // Names are byte strings: U+00E9 and e + U+0301 are two names (formats/gguf.md, "Validation").
        let nfc = "caf\u{e9}", nfd = "cafe\u{301}"
        for file in ["ok_nfc_nfd_names.safetensors", "ok_nfc_nfd_keys.gguf"] {
            let m = try ModelOpener.open(MalformedCorpus.path(file))
            #expect(m.tensors.count == 2)
            #expect(m.tensor(nfc).map { Array($0.name.utf8) } == Array(nfc.utf8))
            #expect(m.tensor(nfd).map { Array($0.name.utf8) } == Array(nfd.utf8))
            #expect(m.tensor(nfc)?.offset != m.tensor(nfd)?.offset)
        }
        let keys = try ModelOpener.open(MalformedCorpus.path("ok_nfc_nfd_keys.gguf")).metadata
        #expect(keys.map { Array($0.0.utf8) } == [Array("general.architecture".utf8), Array(nfc.utf8), Array(nfd.utf8)])
        #expect(keys.map(\.1).suffix(2) == [.gguf(.u32(1)), .gguf(.u32(2))])

        let sh = try ModelOpener.open(MalformedCorpus.path("ok_sharded/"))
        #expect(sh.files.count == 2 && sh.tensors.map(\.name) == ["a", "b"])
        let viaIndex = try ModelOpener.open(MalformedCorpus.path("ok_sharded/model.safetensors.index.json"))
        #expect(viaIndex.tensors.map(\.name) == ["a", "b"])
    }

    /// CVE-2024-34359: a chat template is data. It is read byte for byte and nothing runs.
    @Test func chatTemplateIsPlainData() throws {
        let marker = "/tmp/ftq-jinja-was-rendered"
        try? FileManager.default.removeItem(atPath: marker)
        let m = try ModelOpener.open(MalformedCorpus.path("ok_chat_template_jinja.gguf"))
        let expected = #"{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] }}{% endfor %}"#
            + #"{{ self.__init__.__globals__.__builtins__.__import__('os').popen('touch /tmp/ftq-jinja-was-rendered').read() }}"#
            + #"{{ cycler.__init__.__globals__.os.system('id') }}"# + "\n" + #"{# ftq must never render this #}"#
        let value = m.metadata.first { $0.0 == "tokenizer.chat_template" }?.1
        #expect(value == .gguf(.string(expected)))
        #expect(m.metadata.map(\.0) == ["general.architecture", "tokenizer.chat_template"])
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    // MARK: inputs made at run time

    @Test func shardSymlinkPointingOutsideTheDirectory() throws {
        let tmp = try MalformedCorpus.tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let dir = try MalformedCorpus.copyItem("ok_sharded/", into: tmp)
        let shard = dir + "/model-00002-of-00002.safetensors"
        let outside = tmp + "/outside.safetensors"
        try FileManager.default.moveItem(atPath: shard, toPath: outside)
        try FileManager.default.createSymbolicLink(atPath: shard, withDestinationPath: outside)
        MalformedCorpus.expectError("index.shard-outside-directory", mentions: ["model-00002-of-00002.safetensors", "outside"]) {
            _ = try ModelOpener.open(dir)
        }
        // A relative link to ../ is the same escape.
        try FileManager.default.removeItem(atPath: shard)
        try FileManager.default.createSymbolicLink(atPath: shard, withDestinationPath: "../outside.safetensors")
        MalformedCorpus.expectError("index.shard-outside-directory", mentions: ["model-00002-of-00002.safetensors"]) {
            _ = try ModelOpener.open(dir)
        }
        // A link that stays inside the directory is fine.
        try FileManager.default.removeItem(atPath: shard)
        try FileManager.default.moveItem(atPath: outside, toPath: dir + "/real-shard.bin")
        try FileManager.default.createSymbolicLink(atPath: shard, withDestinationPath: "real-shard.bin")
        #expect(try ModelOpener.open(dir).tensors.map(\.name) == ["a", "b"])
    }

    @Test func shardDirectorySymlinkedOutside() throws {
        let tmp = try MalformedCorpus.tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let dir = tmp + "/model"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: tmp + "/elsewhere", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: MalformedCorpus.path("ok_sharded/model-00001-of-00002.safetensors"),
                                         toPath: tmp + "/elsewhere/model-00001-of-00002.safetensors")
        try FileManager.default.createSymbolicLink(atPath: dir + "/sub", withDestinationPath: tmp + "/elsewhere")
        try Data(#"{"weight_map":{"a":"sub/model-00001-of-00002.safetensors"}}"#.utf8)
            .write(to: URL(fileURLWithPath: dir + "/model.safetensors.index.json"))
        MalformedCorpus.expectError("index.shard-outside-directory", mentions: ["sub/model-00001-of-00002.safetensors"]) {
            _ = try ModelOpener.open(dir)
        }
    }

    @Test func indexOverTheCap() throws {
        let tmp = try MalformedCorpus.tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let index = tmp + "/model.safetensors.index.json"
        try Data(#"{"weight_map":{}}"#.utf8).write(to: URL(fileURLWithPath: index))
        #expect(truncate(index, off_t(SafetensorsHeader.maxHeaderBytes + 1)) == 0)  // sparse
        MalformedCorpus.expectError("index.too-large", mentions: ["268435457"]) { _ = try ModelOpener.open(tmp) }
        MalformedCorpus.expectError("index.too-large", mentions: ["268435457"]) { _ = try ModelOpener.open(index) }
    }

    @Test(.timeLimit(.minutes(1))) func fifoIsRejectedWithoutBlocking() throws {
        let tmp = try MalformedCorpus.tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        for name in ["model.safetensors", "model.gguf", "model.safetensors.index.json"] {
            let fifo = tmp + "/" + name
            #expect(mkfifo(fifo, 0o600) == 0)
            MalformedCorpus.expectError("input.not-regular-file", mentions: [name, "FIFO"]) { _ = try ModelOpener.open(fifo) }
            unlink(fifo)
        }
        // A FIFO where the index expects a shard.
        let dir = try MalformedCorpus.copyItem("ok_sharded/", into: tmp)
        let shard = dir + "/model-00002-of-00002.safetensors"
        unlink(shard)
        #expect(mkfifo(shard, 0o600) == 0)
        MalformedCorpus.expectError("input.not-regular-file", mentions: ["model-00002-of-00002.safetensors", "FIFO"]) {
            _ = try ModelOpener.open(dir)
        }
        // A directory holding only a FIFO named model.safetensors.
        let lone = tmp + "/lone"
        try FileManager.default.createDirectory(atPath: lone, withIntermediateDirectories: true)
        #expect(mkfifo(lone + "/model.safetensors", 0o600) == 0)
        MalformedCorpus.expectError("input.not-regular-file", mentions: ["model.safetensors"]) { _ = try ModelOpener.open(lone) }
    }

    @Test func devNullIsNotAModel() {
        MalformedCorpus.expectError("input.not-regular-file", mentions: ["/dev/null", "character device"]) {
            _ = try ModelOpener.open("/dev/null")
        }
    }

    @Test func directoryNamedLikeAGGUFFile() throws {
        let tmp = try MalformedCorpus.tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let dir = tmp + "/model.gguf"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        MalformedCorpus.expectError("input.no-model", mentions: ["model.gguf", "directory"]) { _ = try ModelOpener.open(dir) }
    }

    @Test func splitPartThatIsADirectory() throws {
        let tmp = try MalformedCorpus.tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let first = try MalformedCorpus.copyItem("ok_split/m-00001-of-00002.gguf", into: tmp)
        try FileManager.default.createDirectory(atPath: tmp + "/m-00002-of-00002.gguf", withIntermediateDirectories: true)
        MalformedCorpus.expectError("input.not-regular-file", mentions: ["m-00002-of-00002.gguf", "directory"]) {
            _ = try ModelOpener.open(first)
        }
    }

    /// ELOOP is not ENOENT: the error must not claim that the file does not exist.
    @Test func symlinkLoopIsAnIOErrorThatSaysSo() throws {
        let tmp = try MalformedCorpus.tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let loop = tmp + "/loop.safetensors"
        try FileManager.default.createSymbolicLink(atPath: loop, withDestinationPath: "loop.safetensors")
        do {
            _ = try ModelOpener.open(loop)
            Issue.record("a symbolic link loop was opened")
        } catch let e as FTQError {
            #expect(e.kind == .io && e.file == loop, "\(e.code): \(e.description)")
            #expect(e.code != "io.not-found" && !e.message.contains("no such file"), "\(e.code): \(e.message)")
            #expect(e.message.contains("symbolic links"), "\(e.message)")
        }
    }

    /// The GGUF specification limits keys to 65535 bytes; a longer key is not read into memory.
    @Test func ggufKeyLongerThanTheSpecLimit() throws {
        var b = Array("GGUF".utf8)
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
        u32(3); u64(0); u64(1)
        u64(65536); b += [UInt8](repeating: UInt8(ascii: "k"), count: 65536)
        u32(4); u32(1)  // u32 value 1
        let p = try FormatTestSupport.tempFile(b, name: "long-key.gguf")
        do {
            _ = try ModelOpener.open(p)
            Issue.record("a 65536-byte key was accepted")
        } catch let e as FTQError {
            #expect(e.kind == .invalidInput && e.code.hasPrefix("gguf."), "\(e.code): \(e.message)")
            #expect(e.message.contains("key") && e.message.contains("byte 24"), "\(e.message)")
        }
    }

    // MARK: faults

    /// A valid file cut at every byte of its header and data: each prefix is a truncated file.
    @Test func safetensorsTruncatedAtEveryByte() throws {
        let full = MalformedCorpus.validSafetensors()
        let whole = try FormatTestSupport.tempFile(full, name: "whole.safetensors")
        #expect(try ModelOpener.open(whole).tensors.count == 2)
        let tmp = try MalformedCorpus.tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        for n in 0..<full.count {
            let p = tmp + "/cut-\(n).safetensors"
            _ = FileManager.default.createFile(atPath: p, contents: Data(full[0..<n]))
            do {
                _ = try ModelOpener.open(p)
                Issue.record("prefix of \(n) bytes accepted")
            } catch let e as FTQError {
                #expect(e.code == "safetensors.truncated", "prefix \(n): \(e.code): \(e.message)")
                #expect(e.message.contains("truncated"), "prefix \(n): \(e.message)")
            }
            unlink(p)
        }
    }

    @Test func ggufTruncatedAtEveryByte() throws {
        let full = Array(try Data(contentsOf: URL(fileURLWithPath: MalformedCorpus.path("ok_valid.gguf"))))
        let tmp = try MalformedCorpus.tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let allowed: Set = ["gguf.truncated", "gguf.bad-count", "gguf.bad-string", "gguf.tensor-out-of-bounds"]
        for n in 0..<full.count {
            let p = tmp + "/cut-\(n).gguf"
            _ = FileManager.default.createFile(atPath: p, contents: Data(full[0..<n]))
            do {
                _ = try ModelOpener.open(p)
                Issue.record("prefix of \(n) bytes accepted")
            } catch let e as FTQError {
                #expect(allowed.contains(e.code), "prefix \(n): \(e.code): \(e.message)")
            }
            unlink(p)
        }
    }

    /// Every single-byte change to a valid file is either read consistently or rejected as
    /// invalid input: never a trap, never a tensor outside its file.
    @Test(arguments: ["ok_valid.gguf", "ok_valid.safetensors", "ok_chat_template_jinja.gguf"])
    func singleByteMutations(_ name: String) throws {
        let full = Array(try Data(contentsOf: URL(fileURLWithPath: MalformedCorpus.path(name))))
        let ext = (name as NSString).pathExtension
        let tmp = try MalformedCorpus.tempDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let p = tmp + "/m." + ext
        for i in full.indices {
            for v: UInt8 in [0x00, 0xff, 0x80, full[i] &+ 1, full[i] &- 1] where v != full[i] {
                var d = full
                d[i] = v
                _ = FileManager.default.createFile(atPath: p, contents: Data(d))
                do {
                    let m = try ModelOpener.open(p)
                    for t in m.tensors {
                        #expect(t.offset >= 0 && t.nbytes >= 0 && t.offset + t.nbytes <= m.file(of: t).size,
                                "byte \(i) = \(v): tensor outside the file")
                    }
                } catch let e as FTQError {
                    #expect(e.kind == .invalidInput, "byte \(i) = \(v): \(e.code): \(e.message)")
                }
            }
        }
    }
}
