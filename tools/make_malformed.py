#!/usr/bin/env python3
"""Writes testdata/malformed/: small safetensors, GGUF, sharded and split inputs that each break
exactly one rule, plus a few valid controls, and testdata/malformed/README.md listing them.

Deterministic: the same bytes on every run. Uses only the Python standard library.
Every file stays under 64 KB; inputs that must be large (sparse multi-GiB files, symbolic
links, FIFOs) are made by the tests at run time instead.

usage: make_malformed.py [OUTDIR]   (default: testdata/malformed beside this script's parent)
"""
import json
import os
import shutil
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "testdata", "malformed")

MAX_FILE = 64 * 1024
MAX_TOTAL = 1024 * 1024

# (name, rule, expected code): one README line each. "ok" marks a valid control.
ENTRIES = []


def write(rel, data):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert len(data) < MAX_FILE, (rel, len(data))
    with open(path, "wb") as f:
        f.write(data)


def entry(name, rule, code):
    assert all(name != e[0] for e in ENTRIES), name
    ENTRIES.append((name, rule, code))


def case(name, data, rule, code):
    write(name, data)
    entry(name, rule, code)


u16 = lambda v: struct.pack("<H", v)
u32 = lambda v: struct.pack("<I", v)
u64 = lambda v: struct.pack("<Q", v)
i32 = lambda v: struct.pack("<i", v)

GIT_LFS = (b"version https://git-lfs.github.com/spec/v1\n"
           b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
           b"size 16060522624\n")

# --------------------------------------------------------------------------------------------
# safetensors

def st_raw(header, data=b"", length=None):
    """An 8-byte little-endian length, the header bytes as given, then data."""
    if isinstance(header, str):
        header = header.encode("utf-8")
    return u64(len(header) if length is None else length) + header + data


DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "U8": 1, "I64": 8}


def st_valid(tensors, metadata=None):
    """A valid file: tensors = [(name, dtype, shape, data)], packed in order."""
    header, data, off = {}, b"", 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, blob in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(blob)]}
        data += blob
        off += len(blob)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return st_raw(text, data)


def e(name, dtype="F32", shape="[2]", offsets="[0,8]"):
    """One tensor entry as JSON text (so that bad values can be written literally)."""
    return '"%s":{"dtype":"%s","shape":%s,"data_offsets":%s}' % (name, dtype, shape, offsets)


DATA8 = bytes(range(8))
DATA16 = bytes(range(16))


def safetensors_cases():
    case("ok_valid.safetensors",
         st_valid([("a", "F32", [2], DATA8), ("b", "F16", [2, 2], DATA8)], {"format": "pt"}),
         "valid control: two tensors and __metadata__", "ok")
    case("st_empty.safetensors", b"",
         "S1: an empty file has no 8-byte header length", "safetensors.truncated")
    case("st_7_bytes.safetensors", b"\x10\x00\x00\x00\x00\x00\x00",
         "S1: 7 bytes, shorter than the 8-byte header length", "safetensors.truncated")
    case("st_git_lfs_pointer.safetensors", GIT_LFS,
         "S1: a git-lfs pointer text file instead of the model", "safetensors.git-lfs-pointer")
    case("st_header_over_cap.safetensors", st_raw("{}", length=256 * 2**20 + 1),
         "S2: header length 268435457, over the 256 MiB cap", "safetensors.header-too-large")
    case("st_header_len_max.safetensors", st_raw("{}", length=2**64 - 1),
         "S2: header length 2^64-1", "safetensors.header-too-large")
    case("st_header_past_eof.safetensors", st_raw("{" + e("a") + "}", length=1000),
         "S3: header length 1000 runs past the end of the file (truncated)", "safetensors.truncated")
    case("st_header_not_brace.safetensors", st_raw('[{"a":1}]'),
         "S4: header starts with '[' instead of '{'", "safetensors.header-start")
    case("st_header_leading_space.safetensors", st_raw(" {}"),
         "S4: header starts with a space instead of '{'", "safetensors.header-start")
    case("st_json_syntax.safetensors", st_raw('{"a":}'),
         "S5: invalid JSON (a value is missing)", "json.syntax")
    case("st_json_eof.safetensors", st_raw('{"a":{"dtype":"F32"'),
         "S5: JSON ends inside an object", "json.eof")
    case("st_json_trailing_comma.safetensors", st_raw("{" + e("a") + ",}", DATA8),
         "S5: trailing comma in an object", "json.syntax")
    case("st_json_trailing_data.safetensors", st_raw("{" + e("a") + "}x", DATA8),
         "S5: data after the JSON object inside the header", "json.trailing")
    case("st_json_leading_zero.safetensors", st_raw("{" + e("a", shape="[02]") + "}", DATA8),
         "S5: number with a leading zero", "json.syntax")
    case("st_json_nan.safetensors", st_raw("{" + e("a", shape="[NaN]") + "}", DATA8),
         "S5: NaN is not JSON", "json.syntax")
    case("st_json_control_char.safetensors", st_raw("{" + e("a\x01b") + "}", DATA8),
         "S5: unescaped control character in a tensor name", "json.control-character")
    case("st_json_lone_surrogate.safetensors", st_raw("{" + e("a\\ud800") + "}", DATA8),
         "S5: unpaired surrogate escape in a tensor name", "json.surrogate")
    case("st_invalid_utf8.safetensors", st_raw(b"{" + e("a\xffb").encode("latin-1") + b"}", DATA8),
         "S5: invalid UTF-8 byte 0xff in a tensor name", "json.utf8")
    case("st_invalid_utf8_overlong.safetensors", st_raw(b"{" + e("a\xc0\xafb").encode("latin-1") + b"}", DATA8),
         "S5: overlong UTF-8 encoding of '/' in a tensor name", "json.utf8")
    case("st_invalid_utf8_surrogate.safetensors", st_raw(b"{" + e("a\xed\xa0\x80").encode("latin-1") + b"}", DATA8),
         "S5: UTF-8-encoded surrogate in a tensor name", "json.utf8")
    case("st_deeply_nested.safetensors", st_raw('{"__metadata__":' + "[" * 10000 + "]" * 10000 + "}"),
         "S5: JSON nested 10000 deep (limit 64)", "json.too-deep")
    case("st_duplicate_tensor.safetensors",
         st_raw("{" + e("a") + "," + e("a", offsets="[8,16]") + "}", DATA16),
         "S5: the same tensor name twice", "safetensors.duplicate-key")
    case("st_duplicate_tensor_escaped.safetensors",
         st_raw("{" + e("ab") + "," + e("\\u0061b", offsets="[8,16]") + "}", DATA16),
         "S5: the same tensor name twice, once written with a \\u escape", "safetensors.duplicate-key")
    case("st_duplicate_tensor_newline.safetensors",
         st_raw("{" + e("x\\ny\\u001b[2J") + "," + e("x\\ny\\u001b[2J", offsets="[8,16]") + "}", DATA16),
         "S5: a duplicated tensor name holding a newline and an escape sequence; the error must stay one line",
         "safetensors.duplicate-key")
    case("st_duplicate_field.safetensors",
         st_raw('{"a":{"dtype":"F32","dtype":"F16","shape":[2],"data_offsets":[0,8]}}', DATA8),
         "S5: duplicate \"dtype\" inside one tensor entry", "safetensors.duplicate-key")
    case("st_duplicate_metadata_key.safetensors",
         st_raw('{"__metadata__":{"format":"pt","format":"np"},' + e("a") + "}", DATA8),
         "S5: duplicate key inside __metadata__", "safetensors.duplicate-key")
    case("st_metadata_not_object.safetensors", st_raw('{"__metadata__":"pt",' + e("a") + "}", DATA8),
         "S6: __metadata__ is a string, not an object", "safetensors.bad-metadata")
    case("st_metadata_number_value.safetensors", st_raw('{"__metadata__":{"step":1000},' + e("a") + "}", DATA8),
         "S6: a __metadata__ value is a number, not a string", "safetensors.bad-metadata")
    case("st_metadata_nested_value.safetensors", st_raw('{"__metadata__":{"cfg":{"x":"1"}},' + e("a") + "}", DATA8),
         "S6: a __metadata__ value is an object, not a string", "safetensors.bad-metadata")
    case("ok_nfc_nfd_names.safetensors",
         st_raw("{" + e("caf\u00e9") + "," + e("cafe\u0301", offsets="[8,16]") + "}", DATA16),
         "valid control: tensor names caf\\u00e9 and cafe\\u0301 differ in their bytes, so they are two names", "ok")
    case("st_empty_name.safetensors", st_raw("{" + e("") + "}", DATA8),
         "S7: a tensor with an empty name", "safetensors.empty-name")
    case("st_entry_not_object.safetensors", st_raw('{"a":[0,8]}', DATA8),
         "S8: a tensor entry that is an array, not an object", "safetensors.bad-entry")
    case("st_unknown_field.safetensors",
         st_raw('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"quant":"q4"}}', DATA8),
         "S8: an unknown field \"quant\" in a tensor entry", "safetensors.unknown-field")
    case("st_missing_dtype.safetensors", st_raw('{"a":{"shape":[2],"data_offsets":[0,8]}}', DATA8),
         "S8: a tensor entry without \"dtype\"", "safetensors.bad-entry")
    case("st_missing_shape.safetensors", st_raw('{"a":{"dtype":"F32","data_offsets":[0,8]}}', DATA8),
         "S8: a tensor entry without \"shape\"", "safetensors.bad-entry")
    case("st_missing_offsets.safetensors", st_raw('{"a":{"dtype":"F32","shape":[2]}}', DATA8),
         "S8: a tensor entry without \"data_offsets\"", "safetensors.bad-entry")
    case("st_unknown_dtype.safetensors", st_raw("{" + e("a", dtype="F8") + "}", DATA8),
         "S9: unknown dtype \"F8\"", "safetensors.unknown-dtype")
    case("st_lowercase_dtype.safetensors", st_raw("{" + e("a", dtype="f32") + "}", DATA8),
         "S9: dtype names are case-sensitive (\"f32\")", "safetensors.unknown-dtype")
    case("st_dtype_not_string.safetensors", st_raw('{"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}', DATA8),
         "S9: dtype is a number", "safetensors.unknown-dtype")
    case("st_shape_not_array.safetensors", st_raw("{" + e("a", shape='"2"') + "}", DATA8),
         "S10: shape is a string", "safetensors.bad-shape")
    case("st_shape_negative.safetensors", st_raw("{" + e("a", shape="[-2]") + "}", DATA8),
         "S10: a negative dimension", "safetensors.bad-shape")
    case("st_shape_minus_zero.safetensors", st_raw("{" + e("a", shape="[2,-0]", offsets="[0,0]") + "}"),
         "S10: dimension -0", "safetensors.bad-shape")
    case("st_shape_fraction.safetensors", st_raw("{" + e("a", shape="[2.0]") + "}", DATA8),
         "S10: dimension written 2.0", "safetensors.bad-shape")
    case("st_shape_exponent.safetensors", st_raw("{" + e("a", shape="[1e2]", offsets="[0,400]") + "}", bytes(400)),
         "S10: dimension written 1e2", "safetensors.bad-shape")
    case("st_shape_string_dim.safetensors", st_raw("{" + e("a", shape='["2"]') + "}", DATA8),
         "S10: dimension written as a string", "safetensors.bad-shape")
    case("st_shape_dim_over_int64.safetensors", st_raw("{" + e("a", shape="[18446744073709551615]") + "}", DATA8),
         "S10: dimension 2^64-1, over 2^63-1", "safetensors.bad-shape")
    case("st_shape_dim_over_uint64.safetensors", st_raw("{" + e("a", shape="[99999999999999999999999]") + "}", DATA8),
         "S10: dimension over 2^64", "safetensors.bad-shape")
    case("st_offsets_one.safetensors", st_raw("{" + e("a", offsets="[0]") + "}", DATA8),
         "S11: data_offsets with one number", "safetensors.bad-offsets")
    case("st_offsets_three.safetensors", st_raw("{" + e("a", offsets="[0,8,8]") + "}", DATA8),
         "S11: data_offsets with three numbers", "safetensors.bad-offsets")
    case("st_offsets_negative.safetensors", st_raw("{" + e("a", offsets="[-8,0]") + "}", DATA8),
         "S11: a negative data offset", "safetensors.bad-offsets")
    case("st_offsets_fraction.safetensors", st_raw("{" + e("a", offsets="[0,8.0]") + "}", DATA8),
         "S11: data offset written 8.0", "safetensors.bad-offsets")
    case("st_offsets_not_array.safetensors", st_raw("{" + e("a", offsets='"0-8"') + "}", DATA8),
         "S11: data_offsets is a string", "safetensors.bad-offsets")
    case("st_offsets_reversed.safetensors", st_raw("{" + e("a", offsets="[8,0]") + "}", DATA8),
         "S11: data_offsets [8,0], begin after end", "safetensors.bad-offsets")
    case("st_size_mismatch.safetensors", st_raw("{" + e("a", shape="[3]") + "}", DATA8),
         "S12: F32 [3] needs 12 bytes but data_offsets span 8", "safetensors.size-mismatch")
    case("st_count_overflow.safetensors",
         st_raw("{" + e("a", shape="[4294967296,4294967296,16]") + "}", DATA8),
         "S12: element count 2^68 overflows 64 bits", "safetensors.size-overflow")
    case("st_bytes_overflow.safetensors", st_raw("{" + e("a", shape="[4611686018427387904]") + "}", DATA8),
         "S12: 2^62 F32 elements overflow a 64-bit byte size", "safetensors.size-overflow")
    case("st_f4_odd_count.safetensors", st_raw("{" + e("a", dtype="F4", shape="[3]", offsets="[0,2]") + "}", DATA8[:2]),
         "S12: 3 F4 elements do not fill whole bytes", "safetensors.partial-byte")
    case("st_f6_partial.safetensors", st_raw("{" + e("a", dtype="F6_E2M3", shape="[3]", offsets="[0,3]") + "}", DATA8[:3]),
         "S12: 3 F6_E2M3 elements (18 bits) do not fill whole bytes", "safetensors.partial-byte")
    case("ok_f4_even_count.safetensors", st_raw("{" + e("a", dtype="F4", shape="[2,3]", offsets="[0,3]") + "}", DATA8[:3]),
         "valid control: 6 F4 elements in 3 bytes", "ok")
    case("st_hole.safetensors", st_raw("{" + e("a") + "," + e("b", offsets="[16,24]") + "}", bytes(24)),
         "S13: 8 bytes between tensors a and b belong to no tensor", "safetensors.hole")
    case("st_hole_at_start.safetensors", st_raw("{" + e("a", offsets="[8,16]") + "}", DATA16),
         "S13: the first tensor starts at data byte 8", "safetensors.hole")
    case("st_overlap.safetensors", st_raw("{" + e("a") + "," + e("b", offsets="[4,12]") + "}", bytes(12)),
         "S13: tensors a [0,8) and b [4,12) overlap", "safetensors.overlap")
    case("st_overlap_same_span.safetensors", st_raw("{" + e("a") + "," + e("b") + "}", DATA8),
         "S13: tensors a and b share the same bytes", "safetensors.overlap")
    case("st_trailing_bytes.safetensors", st_raw("{" + e("a") + "}", DATA8 + b"\0\0\0\0"),
         "S14: 4 bytes after the last tensor", "safetensors.trailing-bytes")
    case("st_tensor_past_eof.safetensors",
         st_raw("{" + e("a") + "," + e("b", offsets="[8,16]") + "}", DATA16[:12]),
         "S14: tensor b ends at data byte 16 but the file holds 12 (truncated download)", "safetensors.truncated")
    case("st_no_data_section.safetensors", st_raw("{" + e("a") + "}"),
         "S14: header only, the data is missing", "safetensors.truncated")


# --------------------------------------------------------------------------------------------
# GGUF

T_U8, T_I8, T_U16, T_I16, T_U32, T_I32, T_F32, T_BOOL, T_STRING, T_ARRAY, T_U64, T_I64, T_F64 = range(13)
G_F32, G_F16, G_Q4_0 = 0, 1, 2


def gs(s):
    if isinstance(s, str):
        s = s.encode("utf-8")
    return u64(len(s)) + s


def kv(key, vtype, payload):
    return gs(key) + u32(vtype) + payload


def kv_str(key, value):
    return kv(key, T_STRING, gs(value))


def kv_u32(key, value):
    return kv(key, T_U32, u32(value))


def tinfo(name, ne, gtype, offset):
    return gs(name) + u32(len(ne)) + b"".join(u64(d) for d in ne) + u32(gtype) + u64(offset)


def gguf(kvs=(), infos=(), data=b"", version=3, n_tensors=None, n_kv=None, magic=b"GGUF", align=32):
    head = (magic + u32(version) + u64(len(infos) if n_tensors is None else n_tensors)
            + u64(len(kvs) if n_kv is None else n_kv) + b"".join(kvs) + b"".join(infos))
    if infos:
        head += b"\0" * ((align - len(head) % align) % align)
    return head + data


ARCH = kv_str("general.architecture", "llama")
# Tensor a: F32 ne=[4] (16 bytes) at 0; tensor b: F16 ne=[8,2] (32 bytes) at 32.
TA = tinfo("a", [4], G_F32, 0)
TB = tinfo("b", [8, 2], G_F16, 32)
DATA_AB = bytes(range(16)) + bytes(16) + bytes(range(32))


def g1(*kvs, data=b"", **kw):
    """A file with the given key-values and one F32 tensor a [4]."""
    return gguf([ARCH, *kvs], [TA], bytes(range(16)) + data, **kw)


def gt(info, data=bytes(64)):
    """A file with one tensor info and `data` bytes of data."""
    return gguf([ARCH], [info], data)


JINJA = ("{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] }}{% endfor %}"
         "{{ self.__init__.__globals__.__builtins__.__import__('os').popen('touch /tmp/ftq-jinja-was-rendered').read() }}"
         "{{ cycler.__init__.__globals__.os.system('id') }}\n{# ftq must never render this #}")


def gguf_cases():
    case("ok_valid.gguf", gguf([ARCH, kv_str("general.name", "tiny")], [TA, TB], DATA_AB),
         "valid control: two tensors, two key-values", "ok")
    case("ok_chat_template_jinja.gguf",
         gguf([ARCH, kv_str("tokenizer.chat_template", JINJA)], [TA], bytes(16)),
         "valid control: tokenizer.chat_template holds Jinja with a code-execution payload; it is data, shown verbatim, never rendered",
         "ok")
    nested4 = kv("nested", T_ARRAY, (u32(T_ARRAY) + u64(1)) * 3 + u32(T_U8) + u64(2) + b"\x01\x02")
    case("ok_nested_arrays_depth4.gguf", gguf([ARCH, nested4]),
         "valid control: arrays nested 4 deep, the limit", "ok")
    case("gguf_empty.gguf", b"", "G1: an empty .gguf file", "gguf.truncated")
    case("gguf_truncated_magic.gguf", b"GGU", "G1: 3 bytes, cut inside the magic", "gguf.truncated")
    case("gguf_bad_magic.gguf", b"GGUX" + gguf([ARCH])[4:], "G1: magic GGUX", "gguf.bad-magic")
    case("gguf_safetensors_named_gguf.gguf", st_valid([("a", "F32", [2], DATA8)]),
         "G1: a safetensors file named .gguf", "gguf.bad-magic")
    case("gguf_git_lfs_pointer.gguf", GIT_LFS, "G1: a git-lfs pointer named .gguf", "gguf.git-lfs-pointer")
    case("legacy_ggjt.bin", b"tjgg" + u32(3) + bytes(32), "G1: pre-GGUF GGJT file (magic bytes tjgg)", "gguf.legacy-format")
    case("legacy_ggml.bin", b"lmgg" + bytes(32), "G1: pre-GGUF unversioned GGML file (magic bytes lmgg)", "gguf.legacy-format")
    case("gguf_legacy_GGML_magic.gguf", b"GGML" + bytes(32), "G1: magic GGML", "gguf.legacy-format")
    case("gguf_version_1.gguf", b"GGUF" + u32(1) + u32(0) + u32(0) + bytes(16),
         "G2: GGUF version 1 (32-bit counts)", "gguf.unsupported-version")
    case("gguf_version_big_endian.gguf", b"GGUF" + struct.pack(">I", 3) + bytes(16),
         "G2: big-endian GGUF (version bytes 00 00 00 03)", "gguf.big-endian")
    case("gguf_version_4.gguf", gguf([ARCH], version=4), "G2: unknown version 4", "gguf.unsupported-version")
    case("gguf_version_0.gguf", gguf([ARCH], version=0), "G2: version 0", "gguf.unsupported-version")
    case("gguf_truncated_in_version.gguf", b"GGUF\x03\x00", "truncated inside the version", "gguf.truncated")
    case("gguf_truncated_in_counts.gguf", b"GGUF" + u32(3) + u64(0) + b"\x01\x00\x00\x00",
         "truncated inside the key-value count", "gguf.truncated")
    case("gguf_truncated_in_kv_value.gguf", b"GGUF" + u32(3) + u64(0) + u64(1) + gs("general.name") + u32(T_STRING) + b"\x04\x00\x00\x00",
         "truncated inside a string value's length (byte 48)", "gguf.truncated")
    case("gguf_truncated_in_string.gguf", b"GGUF" + u32(3) + u64(0) + u64(1) + gs("general.name") + u32(T_STRING) + u64(20) + b"tiny",
         "truncated inside a string value (20 bytes claimed, 4 left)", "gguf.bad-string")
    case("gguf_truncated_in_tensor_info.gguf",
         b"GGUF" + u32(3) + u64(1) + u64(0) + gs("tensor.with.long.name") + u32(1) + b"\x04\x00\x00\x00",
         "truncated inside a tensor's ne[0] (byte 57)", "gguf.truncated")
    case("gguf_truncated_data.gguf", gguf([ARCH, kv_str("general.name", "tiny")], [TA, TB], DATA_AB)[:-20],
         "G11: the last tensor's data is cut off (truncated download, 'Bleeding Llama')", "gguf.tensor-out-of-bounds")
    case("gguf_n_kv_2pow63.gguf", b"GGUF" + u32(3) + u64(0) + u64(2**63) + bytes(16),
         "G3: n_kv = 2^63, over 2^63-1 (CVE-2024-23605)", "gguf.bad-count")
    case("gguf_n_kv_huge.gguf", b"GGUF" + u32(3) + u64(0) + u64(2**62) + bytes(16),
         "G3: n_kv = 2^62, far more than the file can hold", "gguf.bad-count")
    case("gguf_n_tensors_2pow63.gguf", b"GGUF" + u32(3) + u64(2**63) + u64(0) + bytes(16),
         "G3: n_tensors = 2^63 (CVE-2024-21836)", "gguf.bad-count")
    case("gguf_n_tensors_wrap.gguf", b"GGUF" + u32(3) + u64(0x0AAAAAAAAAAAAAAB) + u64(0) + bytes(64),
         "G3: n_tensors * info size wraps 64 bits (CVE-2024-21836)", "gguf.bad-count")
    case("gguf_n_tensors_exceeds_room.gguf", gguf([ARCH], [TA], bytes(16), n_tensors=5),
         "G3: n_tensors 5 but room for at most 4 tensor infos", "gguf.bad-count")
    case("gguf_key_len_huge.gguf", b"GGUF" + u32(3) + u64(0) + u64(1) + u64(2**40) + b"general" + bytes(16),
         "G13: key length 2^40, over the 65,535-byte key limit (and past the end of the file)", "gguf.bad-string")
    case("gguf_string_len_max.gguf", gguf([kv("general.name", T_STRING, u64(2**64 - 1) + b"tiny")]),
         "G13: string length 2^64-1; n+1 wraps (CVE-2024-23496)", "gguf.bad-string")
    case("gguf_array_len_2pow63.gguf", gguf([kv("a", T_ARRAY, u32(T_U8) + u64(2**63))]),
         "G17: array length 2^63 in a 43-byte file (the gguf-py hang)", "gguf.bad-array")
    case("gguf_array_strings_huge.gguf", gguf([kv("tokenizer.ggml.tokens", T_ARRAY, u32(T_STRING) + u64(2**40) + gs("a"))]),
         "G17: array of 2^40 strings (CVE-2024-21825)", "gguf.bad-array")
    case("gguf_array_too_deep.gguf",
         gguf([kv("nested", T_ARRAY, (u32(T_ARRAY) + u64(1)) * 4 + u32(T_U8) + u64(1) + b"\x01" + bytes(16))]),
         "G16: arrays nested 5 deep (limit 4)", "gguf.array-too-deep")
    case("gguf_array_nested_1000.gguf",
         gguf([kv("nested", T_ARRAY, (u32(T_ARRAY) + u64(1)) * 1000 + bytes(16))]),
         "G16: arrays nested 1000 deep (unbounded recursion)", "gguf.array-too-deep")
    case("gguf_unknown_value_type.gguf", gguf([kv("general.x", 13, u32(0))]),
         "G4: key-value of unknown type 13", "gguf.unknown-value-type")
    case("gguf_unknown_value_type_max.gguf", gguf([kv("general.x", 0xFFFFFFFF, u32(0))]),
         "G4: key-value of unknown type 0xffffffff", "gguf.unknown-value-type")
    case("gguf_unknown_array_type.gguf", gguf([kv("general.x", T_ARRAY, u32(13) + u64(1) + bytes(16))]),
         "G16: array of unknown element type 13", "gguf.unknown-value-type")
    case("gguf_bool_2.gguf", gguf([ARCH, kv("general.flag", T_BOOL, b"\x02")]),
         "G15: bool byte 2", "gguf.bad-bool")
    case("gguf_bool_array_2.gguf", gguf([ARCH, kv("general.flags", T_ARRAY, u32(T_BOOL) + u64(3) + b"\x00\x01\x02")]),
         "G15: bool byte 2 inside an array", "gguf.bad-bool")
    case("ok_nfc_nfd_keys.gguf",
         gguf([ARCH, kv_u32("caf\u00e9", 1), kv_u32("cafe\u0301", 2)],
              [tinfo("caf\u00e9", [4], G_F32, 0), tinfo("cafe\u0301", [4], G_F32, 32)], bytes(48)),
         "valid control: keys and tensor names caf\\u00e9 and cafe\\u0301 differ in their bytes", "ok")
    case("gguf_empty_key.gguf", gguf([kv_str("", "x"), ARCH]), "G4: empty key", "gguf.empty-key")
    case("gguf_duplicate_key.gguf", gguf([ARCH, kv_str("general.name", "a"), kv_str("general.name", "b")]),
         "G4: key general.name twice", "gguf.duplicate-key")
    evil = "evil\n\x1b[2Jkey"
    case("gguf_duplicate_key_control_chars.gguf", gguf([kv_str(evil, "a"), kv_str(evil, "b")]),
         "G4: a duplicated key holding a newline and an escape sequence; the error must stay one line",
         "gguf.duplicate-key")
    case("gguf_invalid_utf8_key.gguf", gguf([kv(b"general.\xff", T_U32, u32(1))]),
         "G14: key with invalid UTF-8", "gguf.bad-string")
    case("gguf_invalid_utf8_value.gguf", gguf([ARCH, kv("general.name", T_STRING, gs(b"\xc0\xaf"))]),
         "G14: string value with an overlong UTF-8 encoding", "gguf.bad-string")
    case("gguf_invalid_utf8_tensor_name.gguf", gt(tinfo(b"a\xff", [4], G_F32, 0)),
         "G14: tensor name with invalid UTF-8", "gguf.bad-string")
    case("gguf_alignment_u64.gguf", g1(kv("general.alignment", T_U64, u64(32))),
         "G5: general.alignment is u64, not u32", "gguf.bad-alignment")
    case("gguf_alignment_string.gguf", g1(kv_str("general.alignment", "32")),
         "G5: general.alignment is a string", "gguf.bad-alignment")
    case("gguf_alignment_zero.gguf", g1(kv_u32("general.alignment", 0)),
         "G5: general.alignment 0", "gguf.bad-alignment")
    case("gguf_alignment_not_pow2.gguf", g1(kv_u32("general.alignment", 48)),
         "G5: general.alignment 48, not a power of two", "gguf.bad-alignment")
    case("gguf_alignment_too_large.gguf", g1(kv_u32("general.alignment", 2**31)),
         "G5: general.alignment 2^31, over the 1 MiB limit (ggml#1516)", "gguf.bad-alignment")
    case("gguf_empty_tensor_name.gguf", gt(tinfo("", [4], G_F32, 0)), "G6: empty tensor name", "gguf.empty-name")
    case("gguf_duplicate_tensor.gguf", gguf([ARCH], [TA, tinfo("a", [4], G_F32, 32)], bytes(48)),
         "G6: tensor name a twice", "gguf.duplicate-tensor")
    case("gguf_n_dims_5.gguf", gt(tinfo("a", [1, 1, 1, 1, 4], G_F32, 0)),
         "G7: n_dims 5 (CVE-2024-21802)", "gguf.too-many-dims")
    case("gguf_n_dims_9.gguf", gt(tinfo("a", [1] * 8 + [4], G_F32, 0)),
         "G7: n_dims 9 (gguf-tools out-of-bounds write)", "gguf.too-many-dims")
    case("gguf_n_dims_max.gguf", gt(gs("a") + u32(0xFFFFFFFF) + u64(4) + bytes(40)),
         "G7: n_dims 2^32-1", "gguf.too-many-dims")
    case("gguf_dim_over_int64.gguf", gt(tinfo("a", [2**63, 1], G_F32, 0)),
         "G7: ne[0] = 2^63, over 2^63-1", "gguf.bad-dim")
    case("gguf_ne_product_overflow.gguf", gt(tinfo("a", [2**32, 2**32, 2], G_F32, 0)),
         "G9: ne product 2^65 wraps to 0 (CVE-2026-33298)", "gguf.size-overflow")
    case("gguf_nbytes_overflow.gguf", gt(tinfo("a", [2**62], G_F32, 0)),
         "G9: 2^62 F32 elements, byte size overflows (ggml_nbytes)", "gguf.size-overflow")
    case("gguf_unknown_type.gguf", gt(tinfo("a", [4], 99, 0)), "G8: ggml type 99", "gguf.unknown-type")
    case("gguf_removed_type_31.gguf", gt(tinfo("a", [32], 31, 0)),
         "G8: ggml type 31 (Q4_0_4_4, removed)", "gguf.unknown-type")
    case("gguf_removed_type_4.gguf", gt(tinfo("a", [32], 4, 0)),
         "G8: ggml type 4 (Q4_2, removed)", "gguf.unknown-type")
    case("gguf_q4_0_row_33.gguf", gt(tinfo("w", [33, 2], G_Q4_0, 0)),
         "G9: Q4_0 row of 33 elements, not a multiple of the block size 32", "gguf.bad-row-size")
    case("gguf_q4_0_scalar.gguf", gt(tinfo("w", [], G_Q4_0, 0)),
         "G9: Q4_0 tensor with no dimensions (1 element)", "gguf.bad-row-size")
    case("gguf_misaligned.gguf", gt(tinfo("a", [4], G_F32, 4)), "G10: offset 4, alignment 32", "gguf.misaligned")
    case("gguf_misaligned_custom.gguf",
         gguf([ARCH, kv_u32("general.alignment", 64)], [tinfo("a", [4], G_F32, 32)], bytes(64), align=64),
         "G10: offset 32 with general.alignment 64", "gguf.misaligned")
    case("gguf_offset_over_int64.gguf", gt(tinfo("a", [4], G_F32, 2**63)),
         "G11: offset 2^63, over 2^63-1", "gguf.tensor-out-of-bounds")
    case("gguf_offset_wraps.gguf", gt(tinfo("a", [4], G_F32, 2**63 - 32)),
         "G11: data start + offset overflows 64 bits", "gguf.tensor-out-of-bounds")
    case("gguf_offset_past_eof.gguf", gt(tinfo("a", [4], G_F32, 4096)),
         "G11: offset 4096 in a file of 160 bytes (Bleeding Llama out-of-bounds read)", "gguf.tensor-out-of-bounds")
    case("gguf_tensor_past_eof_huge.gguf", gt(tinfo("a", [2**40], G_F32, 0)),
         "G11: a 4 TiB tensor in a small file", "gguf.tensor-out-of-bounds")
    case("gguf_overlap.gguf", gguf([ARCH], [tinfo("a", [16], G_F32, 0), tinfo("b", [8], G_F32, 32)], bytes(64)),
         "G12: tensor b [32,64) inside tensor a [0,64)", "gguf.overlap")
    case("gguf_overlap_same_offset.gguf", gguf([ARCH], [tinfo("a", [8], G_F32, 0), tinfo("b", [8], G_F32, 0)], bytes(32)),
         "G12: tensors a and b at the same offset", "gguf.overlap")


# --------------------------------------------------------------------------------------------
# split GGUF sets

def split_part(no, count, tensors_count, infos, data, extra=()):
    kvs = []
    if no == 0:
        kvs.append(ARCH)
    kvs += [kv("split.no", T_U16, u16(no)), kv("split.count", T_U16, u16(count)),
            kv("split.tensors.count", T_I32, i32(tensors_count)), *extra]
    return gguf(kvs, infos, data)


def split_cases():
    A, B = tinfo("a", [4], G_F32, 0), tinfo("b", [4], G_F32, 0)
    d = bytes(range(16))
    write("ok_split/m-00001-of-00002.gguf", split_part(0, 2, 2, [A], d))
    write("ok_split/m-00002-of-00002.gguf", split_part(1, 2, 2, [B], d))
    entry("ok_split/m-00001-of-00002.gguf", "valid control: a split set of two parts", "ok")
    entry("ok_split/m-00002-of-00002.gguf", "valid control: the same set, opened by its second part", "ok")

    write("split_missing/m-00001-of-00002.gguf", split_part(0, 2, 2, [A], d))
    entry("split_missing/m-00001-of-00002.gguf", "G18: part 2 of 2 is missing", "gguf.split-missing")

    write("split_wrong_no/m-00001-of-00002.gguf", split_part(0, 2, 2, [A], d))
    write("split_wrong_no/m-00002-of-00002.gguf", split_part(0, 2, 2, [B], d))
    entry("split_wrong_no/m-00001-of-00002.gguf", "G19: the second part says split.no 0", "gguf.split-mismatch")

    write("split_tensor_count/m-00001-of-00002.gguf", split_part(0, 2, 3, [A], d))
    write("split_tensor_count/m-00002-of-00002.gguf", split_part(1, 2, 3, [B], d))
    entry("split_tensor_count/m-00001-of-00002.gguf", "G20: split.tensors.count 3 but the parts hold 2",
          "gguf.split-mismatch")

    write("split_count_vs_name/m-00001-of-00002.gguf", split_part(0, 3, 2, [A], d))
    write("split_count_vs_name/m-00002-of-00002.gguf", split_part(1, 3, 2, [B], d))
    entry("split_count_vs_name/m-00001-of-00002.gguf", "G19: split.count 3 but the name says 2 parts",
          "gguf.split-mismatch")

    write("split_bad_name/model.gguf", split_part(0, 2, 2, [A], d))
    entry("split_bad_name/model.gguf", "G18: split.count 2 in a file not named NAME-NNNNN-of-MMMMM.gguf",
          "gguf.split-name")

    write("split_duplicate_tensor/m-00001-of-00002.gguf", split_part(0, 2, 2, [A], d))
    write("split_duplicate_tensor/m-00002-of-00002.gguf", split_part(1, 2, 2, [A], d))
    entry("split_duplicate_tensor/m-00001-of-00002.gguf", "D8/G6: tensor a in both parts", "model.duplicate-tensor")

    write("split_lfs_part/m-00001-of-00002.gguf", split_part(0, 2, 2, [A], d))
    write("split_lfs_part/m-00002-of-00002.gguf", GIT_LFS)
    entry("split_lfs_part/m-00001-of-00002.gguf", "G1: part 2 is a git-lfs pointer", "gguf.git-lfs-pointer")

    write("split_bad_part/m-00001-of-00002.gguf", split_part(0, 2, 2, [A], d))
    write("split_bad_part/m-00002-of-00002.gguf", split_part(1, 2, 2, [tinfo("b", [4], G_F32, 64)], d))
    entry("split_bad_part/m-00001-of-00002.gguf", "G11: part 2's tensor lies past its end", "gguf.tensor-out-of-bounds")


# --------------------------------------------------------------------------------------------
# sharded safetensors directories

S1, S2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
INDEX = "model.safetensors.index.json"


def index_json(weight_map, total=16):
    return json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2).encode() + b"\n"


def shard(*names):
    return st_valid([(n, "F32", [2], DATA8) for n in names])


def sharded(dirname, files, rule, code):
    for name, data in files.items():
        write(dirname + "/" + name, data)
    entry(dirname + "/", rule, code)


def sharded_cases():
    sharded("ok_sharded", {S1: shard("a"), S2: shard("b"), INDEX: index_json({"a": S1, "b": S2})},
            "valid control: two shards and an index", "ok")
    sharded("sharded_missing_shard", {S1: shard("a"), INDEX: index_json({"a": S1, "b": S2})},
            "D5: the index names a shard that does not exist", "index.missing-shard")
    sharded("sharded_tensor_not_in_shard", {S1: shard("a"), S2: shard("b"), INDEX: index_json({"a": S1, "b": S2, "c": S2})},
            "D7: the index places tensor c in a shard that does not hold it", "index.tensor-not-in-shard")
    sharded("sharded_tensor_in_other_shard", {S1: shard("a", "b"), S2: shard("b"), INDEX: index_json({"a": S1, "b": S2})},
            "D6: shard 1 holds tensor b, which the index places in shard 2", "index.tensor-in-two-shards")
    sharded("sharded_stale_index", {S1: shard("a", "c"), S2: shard("b"), INDEX: index_json({"a": S1, "b": S2})},
            "D6: shard 1 holds tensor c, which the index does not list (stale index)", "index.unlisted-tensor")
    sharded("sharded_stray_single_file",
            {S1: shard("a"), S2: shard("b"), INDEX: index_json({"a": S1, "b": S2}), "model.safetensors": shard("a", "b")},
            "D2: a stray model.safetensors beside the shards and index", "index.stray-single-file")
    sharded("sharded_dotdot", {S1: shard("a"), INDEX: index_json({"a": S1, "b": "../x.safetensors"})},
            "D4: shard name ../x.safetensors leaves the directory", "index.shard-outside-directory")
    sharded("sharded_absolute", {S1: shard("a"), INDEX: index_json({"a": S1, "b": "/etc/passwd"})},
            "D4: absolute shard name /etc/passwd", "index.shard-outside-directory")
    sharded("sharded_backslash", {S1: shard("a"), INDEX: index_json({"a": S1, "b": "..\\x.safetensors"})},
            "D4: shard name with a backslash", "index.shard-outside-directory")
    sharded("sharded_empty_shard_name", {S1: shard("a"), INDEX: index_json({"a": S1, "b": ""})},
            "D4: empty shard name", "index.shard-outside-directory")
    sharded("sharded_weight_map_array", {S1: shard("a"), INDEX: b'{"metadata":{},"weight_map":[["a","%s"]]}' % S1.encode()},
            "D3: weight_map is an array, not an object", "index.bad-weight-map")
    sharded("sharded_weight_map_missing", {S1: shard("a"), INDEX: b'{"metadata":{"total_size":8}}'},
            "D3: no weight_map", "index.bad-weight-map")
    sharded("sharded_weight_map_number", {S1: shard("a"), INDEX: b'{"weight_map":{"a":1}}'},
            "D3: a weight_map value is a number, not a file name", "index.bad-weight-map")
    sharded("sharded_index_not_object", {S1: shard("a"), INDEX: b'["weight_map"]'},
            "D3: the index is a JSON array", "index.bad-weight-map")
    sharded("sharded_duplicate_key", {S1: shard("a"), S2: shard("b"),
            INDEX: ('{"weight_map":{"a":"%s","b":"%s","a":"%s"}}' % (S1, S2, S2)).encode()},
            "D3: tensor a twice in weight_map (duplicate JSON key)", "index.duplicate-key")
    sharded("sharded_duplicate_top_key", {S1: shard("a"), S2: shard("b"),
            INDEX: ('{"weight_map":{"a":"%s"},"weight_map":{"b":"%s"}}' % (S1, S2)).encode()},
            "D3: weight_map twice in the index (duplicate JSON key)", "index.duplicate-key")
    sharded("sharded_index_bad_json", {S1: shard("a"), INDEX: b'{"weight_map":{"a":"%s",}}' % S1.encode()},
            "D3: index is not valid JSON (trailing comma)", "json.syntax")
    sharded("sharded_bad_shard", {S1: shard("a"), S2: st_raw("{" + e("b") + "}", DATA8 + b"\0\0\0\0"),
            INDEX: index_json({"a": S1, "b": S2})},
            "S14: shard 2 has trailing bytes", "safetensors.trailing-bytes")
    sharded("sharded_no_index", {S1: shard("a"), S2: shard("b")},
            "D1: two .safetensors files and no index", "index.missing")
    sharded("sharded_ambiguous_index", {S1: shard("a"), S2: shard("b"),
            "a.safetensors.index.json": index_json({"a": S1}), "b.safetensors.index.json": index_json({"b": S2})},
            "D1: two index files, neither model.safetensors.index.json", "index.ambiguous")
    sharded("sharded_nfd_name_mismatch", {S1: st_valid([("cafe\u0301", "F32", [2], DATA8)]),
            INDEX: index_json({"caf\u00e9": S1}, total=8)},
            "D6: the index lists caf\\u00e9 (NFC) but the shard holds cafe\\u0301 (NFD), a different name",
            "index.unlisted-tensor")
    sharded("no_model", {"config.json": b'{"architectures":["LlamaForCausalLM"]}\n'},
            "D1: a directory with no model at all (config.json only)", "input.no-model")


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    safetensors_cases()
    gguf_cases()
    split_cases()
    sharded_cases()
    lines = ["# Malformed inputs",
             "",
             "Generated by `tools/make_malformed.py` (deterministic, standard library only); do not edit by hand.",
             "Each line: the path ftq opens, the rule it breaks (rule numbers from the readers' comments),",
             "and the error code `ModelOpener.open` must throw (`ok` for a valid control).",
             "Inputs that must be large, symbolic links and FIFOs are made by the tests at run time.",
             ""]
    for name, rule, code in ENTRIES:
        lines.append("- `%s` — %s — `%s`" % (name, rule, code))
    with open(os.path.join(OUT, "README.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    total = 0
    for d, _, files in os.walk(OUT):
        for n in files:
            total += os.path.getsize(os.path.join(d, n))
    assert total < MAX_TOTAL, total
    print("wrote %d cases, %d bytes, to %s" % (len(ENTRIES), total, OUT))


if __name__ == "__main__":
    main()
