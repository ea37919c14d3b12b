#!/usr/bin/env python3
"""End-to-end checks of `ftq quantize --nf4/--fp4` against the bitsandbytes golden file
testdata/golden/bnb/bnb4.safetensors (made by tools/golden/make_bnb.py): each 2-D input case
becomes a model file with one weight, and ftq's output tensors must equal bitsandbytes'.
Works on raw bytes (any dtype, bf16 included), standard library only.

usage: bnb_golden_cases.py make GOLDEN.safetensors DIR     DIR/CASE.safetensors for every 2-D case
       bnb_golden_cases.py check GOLDEN.safetensors CASE CONF OUT.safetensors
Prints a JSON report; check exits 1 on any difference."""
import json
import struct
import sys


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = (v["dtype"], v["shape"], data[base + a:base + b])
    return out


def write(path, tensors):
    header, blob = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + blob)


def make(golden, out_dir):
    g = read(golden)
    cases = []
    for name, (dtype, shape, raw) in g.items():
        if name.endswith(".input") and len(shape) == 2:
            case = name[: -len(".input")]
            write(f"{out_dir}/{case}.safetensors", {"x.weight": (dtype, shape, raw)})
            cases.append(case)
    print(json.dumps({"cases": sorted(cases)}))


def check(golden, case, conf, out):
    g, o = read(golden), read(out)
    prefix = f"{case}.{conf}.weight"
    want = {"x.weight" + k[len(prefix):]: v for k, v in g.items() if k == prefix or k.startswith(prefix + ".")}
    problems = []
    if sorted(want) != sorted(o):
        problems.append(f"tensor names differ: {sorted(set(want) ^ set(o))}")
    for k in sorted(set(want) & set(o)):
        if want[k] != o[k]:
            wd, ws, wr = want[k]
            od, os_, orw = o[k]
            diff = sum(1 for a, b in zip(wr, orw) if a != b) + abs(len(wr) - len(orw))
            problems.append(f"{k}: {od} {os_} vs bitsandbytes' {wd} {ws}, {diff} bytes differ")
    print(json.dumps({"ok": not problems, "problems": problems, "tensors": len(want)}))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 6 and sys.argv[1] == "check":
        check(*sys.argv[2:])
    else:
        print(__doc__)
        sys.exit(2)
