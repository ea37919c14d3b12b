import Foundation
import Testing
import FTQArtifacts

/// ftq's PNG writer (formats/png.md), decoded by another implementation: Python's zlib, with
/// every chunk CRC and the Adler-32 checked (tools/interop/png_check.py).
@Suite struct PNGEncoderTests {
    /// Images that exercise each part of the encoder: a single pixel, flat colour (runs longer
    /// than one match), rows equal to the row above (Up), noise (mostly literals, no filter
    /// wins), a gradient (Sub), and an image larger than the 32 KiB window with repeats far
    /// apart. The decoded pixels must be exactly the encoded ones.
    @Test(arguments: ["one", "flat", "stripes", "noise", "gradient", "wide"])
    func decodesToTheSamePixels(_ name: String) throws {
        var rng: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt8 {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: rng >> 56)
        }
        let (w, h): (Int, Int)
        var px: [UInt8]
        switch name {
        case "one": (w, h) = (1, 1); px = [12, 200, 7]
        case "flat": (w, h) = (300, 40); px = Array((0..<(w * h)).map { _ in [250, 240, 230] as [UInt8] }.joined())
        case "stripes":
            (w, h) = (97, 31)
            var row: [UInt8] = []
            for x in 0..<w { row += x % 7 < 3 ? [0, 0, 0] : [200, 10, UInt8(x)] }
            px = Array((0..<h).map { _ in row }.joined())
        case "noise": (w, h) = (64, 48); px = (0..<(w * h * 3)).map { _ in next() }
        case "gradient":
            (w, h) = (256, 20)
            px = []
            for y in 0..<h {
                for x in 0..<w { px += [UInt8(x), UInt8(y * 9), UInt8(255 - x)] }
            }
        default:
            (w, h) = (1500, 30)
            let noise = (0..<(w * 3)).map { _ in next() }
            let reversed: [UInt8] = noise.reversed()
            px = Array((0..<h).map { y in y % 3 == 0 ? noise : reversed }.joined())
        }
        let png = PNGEncoder.encode(width: w, height: h, rgb: px)
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        try Data(png).write(to: URL(fileURLWithPath: dir + "/x.png"))
        let r = try TestSupport.python(TestSupport.tool("interop/png_check.py"), [dir + "/x.png"])
        #expect(r.status == 0, "\(r.stderr)")
        let info = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        let hasher = SHA256Hasher()
        hasher.update(px)
        #expect(info["width"] as? Int == w && info["height"] as? Int == h)
        #expect(info["rgb_sha256"] as? String == hasher.finalizeHex(), "\(name)")
        #expect(PNGEncoder.encode(width: w, height: h, rgb: px) == png, "deterministic")
        if name == "flat" { #expect(png.count < 600, "flat colour compresses: \(png.count) bytes") }
    }

    /// CRC-32 and the fixed-Huffman stream against known values: the CRC of "IEND" every PNG
    /// ends with, and zlib's own decoding of a stream with literals, a match and the end code.
    @Test func checksumsAndAStreamZlibReads() throws {
        #expect(CRC32.checksum(Array("IEND".utf8)) == 0xAE42_6082)
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        let text = Array("abcabcabcabcabcabcabc xyz, abcabc".utf8)
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        try Data(Deflate.zlib(text)).write(to: URL(fileURLWithPath: dir + "/z"))
        let r = try TestSupport.run("/usr/bin/env", ["python3", "-c",
            "import sys, zlib; sys.stdout.write(zlib.decompress(open(sys.argv[1], 'rb').read()).decode())", dir + "/z"])
        #expect(r.status == 0 && r.stdout == String(decoding: text, as: UTF8.self), "\(r.stdout) \(r.stderr)")
    }
}
