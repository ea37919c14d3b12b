import FTQArtifacts
import FTQCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// ftq's own SHA-256 (Sources/CSHA256, used where the CPU has the SHA extensions) against
/// OpenSSL's, and both against FIPS 180-4's example digests; the two-stream update against two
/// single-stream digests, over every split of the pending bytes the streams can be in.
@Suite struct SHA256Tests {
    static func bytes(_ n: Int, seed: UInt64) -> [UInt8] {
        var s = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<n).map { _ in
            s ^= s << 13; s ^= s >> 7; s ^= s << 17
            return UInt8(truncatingIfNeeded: s >> 24)
        }
    }

    static func digest(_ data: [UInt8], chunks: [Int], openssl: Bool) -> String {
        let h = SHA256Hasher(forceOpenSSL: openssl)
        data.withUnsafeBytes { raw in
            var off = 0
            for c in chunks + [data.count] where off < data.count {
                let n = min(c, data.count - off)
                h.update(UnsafeRawBufferPointer(rebasing: raw[off..<(off + n)]))
                off += n
            }
        }
        return h.finalizeHex()
    }

    @Test func knownDigests() {
        let cases: [(String, String)] = [
            ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
             "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        ]
        for openssl in [false, true] {
            for (text, want) in cases {
                #expect(Self.digest(Array(text.utf8), chunks: [], openssl: openssl) == want, "\(text) openssl: \(openssl)")
            }
            // One million "a" (FIPS 180-4 example), fed in uneven pieces.
            #expect(Self.digest([UInt8](repeating: 0x61, count: 1_000_000), chunks: [1, 63, 64, 65, 4096, 100_000], openssl: openssl)
                    == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        }
    }

    /// Every length up to 300 (all padding cases), chunked three ways, and a few large inputs.
    @Test func ownEqualsOpenSSL() {
        for n in Array(0...300) + [4095, 4096, 4097, 1 << 20, (1 << 20) + 55] {
            let data = Self.bytes(n, seed: UInt64(n))
            let want = Self.digest(data, chunks: [], openssl: true)
            for chunks in [[Int](), [1, 2, 3, 5, 8, 13, 21, 34, 55, 89], [63, 1, 64, 127, 129]] {
                #expect(Self.digest(data, chunks: chunks, openssl: false) == want, "n \(n) chunks \(chunks)")
            }
        }
    }

    /// update(_:alongWith:) equals feeding each digest on its own, whatever bytes each already
    /// holds: one stream starts with a prefix of every length 0...64 (its blocks start at another
    /// offset of the shared data), and the shared data comes in pieces of many sizes.
    @Test func twoStreamsEqualOneAtATime() {
        let shared = Self.bytes(5000, seed: 7)
        for prefixA in [0, 1, 31, 55, 63] {
            for prefixB in 0...64 {
                let pa = Self.bytes(prefixA, seed: 100 + UInt64(prefixA)), pb = Self.bytes(prefixB, seed: 200 + UInt64(prefixB))
                let a = SHA256Hasher(), b = SHA256Hasher()
                pa.withUnsafeBytes { a.update($0) }
                pb.withUnsafeBytes { b.update($0) }
                shared.withUnsafeBytes { raw in
                    var off = 0
                    for c in [0, 1, 64, 7, 200, 64, 129, 1000] + [shared.count] where off < shared.count {
                        let n = min(c, shared.count - off)
                        a.update(UnsafeRawBufferPointer(rebasing: raw[off..<(off + n)]), alongWith: b)
                        off += n
                    }
                }
                #expect(a.finalizeHex() == Self.digest(pa + shared, chunks: [], openssl: true), "prefix \(prefixA)")
                #expect(b.finalizeHex() == Self.digest(pb + shared, chunks: [], openssl: true), "prefix \(prefixB)")
            }
        }
    }

    /// The own implementation is picked exactly where the kernel reports the SHA extensions
    /// (Linux x86-64), so the tests above check it on such machines.
    @Test func detectionMatchesTheKernel() throws {
        #if os(Linux) && arch(x86_64)
        var text = ""
        let f = fopen("/proc/cpuinfo", "r")
        defer { if f != nil { fclose(f) } }
        var line = [CChar](repeating: 0, count: 1 << 16)
        while f != nil, fgets(&line, Int32(line.count), f) != nil {
            let l = String(cString: line)
            if l.hasPrefix("flags") { text = l; break }
        }
        let flags = Set(text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init))
        #expect(SHA256Hasher.accelerated == (flags.contains("sha_ni") && flags.contains("ssse3") && flags.contains("sse4_1")), "\(flags.sorted())")
        #endif
    }
}
