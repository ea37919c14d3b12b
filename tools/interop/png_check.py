#!/usr/bin/env python3
"""Reads a PNG (8-bit RGB or RGBA, non-interlaced, as rsvg-convert writes) with the standard
library only and prints {"width", "height", "colors", "non_white", "pixels", "rgb_sha256"}: the
size, the number of distinct colours, the fraction of pixels that are not white, the colour
("#rrggbb") of each pixel asked for, and the SHA-256 of all pixels as RGB bytes, rows top to
bottom. Every chunk's CRC-32 and the zlib stream's Adler-32 are checked (zlib
itself checks the latter), and nothing may follow IEND. Used to check that ftq's SVG charts
render to a non-blank image of the stated size and that ftq's own PNG charts are valid.
usage: png_check.py FILE.png [X,Y]..."""
import hashlib
import json
import struct
import sys
import zlib


def main(path, points):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        assert len(body) == n and pos + 12 + n <= len(data), "truncated chunk"
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert crc == zlib.crc32(kind + body), "bad CRC in %r" % kind
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, "unsupported PNG"
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
        if kind == b"IEND":
            assert pos == len(data), "bytes after IEND"
            break
    raw = zlib.decompress(idat)
    assert len(raw) == h * (w * bpp + 1), "wrong amount of pixel data"
    wanted = {tuple(map(int, p.split(","))): None for p in points}
    stride = w * bpp
    prev = bytearray(stride)
    colors, non_white = set(), 0
    digest = hashlib.sha256()
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp):
            px = bytes(line[x:x + 3])
            digest.update(px)
            if (x // bpp, y) in wanted:
                wanted[(x // bpp, y)] = "#" + px.hex()
            colors.add(px)
            if px != b"\xff\xff\xff":
                non_white += 1
        prev = line
    print(json.dumps({"width": w, "height": h, "colors": len(colors), "non_white": non_white / (w * h),
                      "pixels": {"%d,%d" % k: v for k, v in wanted.items()}, "rgb_sha256": digest.hexdigest()}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
