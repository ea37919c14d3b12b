/// A PNG writer for 8-bit RGB images (formats/png.md): each row filtered with the cheapest of
/// None, Sub and Up, the rows deflated into one zlib stream of fixed-Huffman blocks with a greedy
/// LZ77 match search, and the IHDR, IDAT and IEND chunks with their CRC-32. Deterministic: the
/// same pixels always give the same bytes.
public enum PNGEncoder {
    /// The PNG file of a `width` x `height` image whose pixels are `rgb` (3 bytes each, rows
    /// top to bottom).
    public static func encode(width: Int, height: Int, rgb: [UInt8]) -> [UInt8] {
        precondition(width > 0 && height > 0 && width <= 1 << 24 && height <= 1 << 24 && rgb.count == width * height * 3)
        let stride = width * 3
        var filtered = [UInt8]()
        filtered.reserveCapacity((stride + 1) * height)
        var candidate = [UInt8](repeating: 0, count: stride)
        for y in 0..<height {
            let row = y * stride
            var best: (filter: UInt8, cost: Int, bytes: [UInt8]) = (0, .max, [])
            for filter: UInt8 in [0, 1, 2] {
                var cost = 0
                for i in 0..<stride {
                    let x = rgb[row + i]
                    let left = i >= 3 ? rgb[row + i - 3] : 0
                    let up = y > 0 ? rgb[row - stride + i] : 0
                    let v = filter == 0 ? x : x &- (filter == 1 ? left : up)
                    candidate[i] = v
                    cost += v < 128 ? Int(v) : 256 - Int(v)
                }
                if cost < best.cost { best = (filter, cost, candidate) }
            }
            filtered.append(best.filter)
            filtered.append(contentsOf: best.bytes)
        }
        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        var header = [UInt8]()
        appendBigEndian(&header, UInt32(width))
        appendBigEndian(&header, UInt32(height))
        header += [8, 2, 0, 0, 0]  // bit depth 8, colour type 2 (RGB), deflate, adaptive filters, no interlace
        appendChunk(&png, "IHDR", header)
        appendChunk(&png, "IDAT", Deflate.zlib(filtered))
        appendChunk(&png, "IEND", [])
        return png
    }

    static func appendBigEndian(_ out: inout [UInt8], _ v: UInt32) {
        out += [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }

    static func appendChunk(_ out: inout [UInt8], _ type: String, _ data: [UInt8]) {
        appendBigEndian(&out, UInt32(data.count))
        let body = Array(type.utf8) + data
        out += body
        appendBigEndian(&out, CRC32.checksum(body))
    }
}

/// CRC-32 as PNG and zlib's gzip framing use it (reflected polynomial 0xEDB88320).
public enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}

/// A deflate compressor (RFC 1951) that writes fixed-Huffman blocks: enough for images made of
/// flat colour, which filtering turns into long runs of zeros. Matches are found greedily with a
/// hash of the next three bytes and a chain of at most `chainLimit` earlier positions.
public enum Deflate {
    static let chainLimit = 32
    static let window = 32768
    static let lengthBase: [Int] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59,
                                    67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtra: [Int] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distanceBase: [Int] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769,
                                      1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577]
    static let distanceExtra: [Int] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]

    /// `data` as a zlib stream (RFC 1950): header 78 01, one final fixed-Huffman block, Adler-32.
    public static func zlib(_ data: [UInt8]) -> [UInt8] {
        var bits = BitWriter()
        bits.bytes = [0x78, 0x01]
        bits.write(1, count: 1)  // BFINAL
        bits.write(1, count: 2)  // BTYPE 01: fixed Huffman codes
        var head = [Int](repeating: -1, count: 1 << 15)
        var previous = [Int](repeating: -1, count: data.count)
        func hash(_ i: Int) -> Int {
            (Int(data[i]) << 10 ^ Int(data[i + 1]) << 5 ^ Int(data[i + 2])) & 0x7FFF
        }
        func insert(_ i: Int) {
            guard i + 2 < data.count else { return }
            let h = hash(i)
            previous[i] = head[h]
            head[h] = i
        }
        var i = 0
        while i < data.count {
            var bestLength = 0, bestDistance = 0
            if i + 2 < data.count {
                var candidate = head[hash(i)]
                var steps = 0
                let limit = min(258, data.count - i)
                while candidate >= 0 && i - candidate <= window && steps < chainLimit {
                    var n = 0
                    while n < limit && data[candidate + n] == data[i + n] { n += 1 }
                    if n > bestLength { (bestLength, bestDistance) = (n, i - candidate) }
                    if n == limit { break }
                    candidate = previous[candidate]
                    steps += 1
                }
            }
            if bestLength >= 3 {
                writeLength(&bits, bestLength)
                writeDistance(&bits, bestDistance)
                for k in i..<(i + bestLength) { insert(k) }
                i += bestLength
            } else {
                writeLiteral(&bits, Int(data[i]))
                insert(i)
                i += 1
            }
        }
        writeLiteral(&bits, 256)  // end of block
        bits.flush()
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in data {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        PNGEncoder.appendBigEndian(&bits.bytes, b << 16 | a)
        return bits.bytes
    }

    /// The fixed literal/length code of `symbol` (RFC 1951, 3.2.6), written most significant
    /// bit first.
    static func writeLiteral(_ bits: inout BitWriter, _ symbol: Int) {
        switch symbol {
        case 0...143: bits.writeCode(0x30 + symbol, count: 8)
        case 144...255: bits.writeCode(0x190 + symbol - 144, count: 9)
        case 256...279: bits.writeCode(symbol - 256, count: 7)
        default: bits.writeCode(0xC0 + symbol - 280, count: 8)
        }
    }

    static func writeLength(_ bits: inout BitWriter, _ length: Int) {
        var k = lengthBase.count - 1
        while lengthBase[k] > length { k -= 1 }
        writeLiteral(&bits, 257 + k)
        bits.write(UInt32(length - lengthBase[k]), count: lengthExtra[k])
    }

    static func writeDistance(_ bits: inout BitWriter, _ distance: Int) {
        var k = distanceBase.count - 1
        while distanceBase[k] > distance { k -= 1 }
        bits.writeCode(k, count: 5)
        bits.write(UInt32(distance - distanceBase[k]), count: distanceExtra[k])
    }

    /// Bits packed least significant first, as deflate stores them.
    struct BitWriter {
        var bytes: [UInt8] = []
        var buffer: UInt64 = 0
        var used = 0

        mutating func write(_ value: UInt32, count: Int) {
            guard count > 0 else { return }
            buffer |= UInt64(value) << UInt64(used)
            used += count
            while used >= 8 {
                bytes.append(UInt8(buffer & 0xFF))
                buffer >>= 8
                used -= 8
            }
        }

        /// A Huffman code: its bits go out from the most significant one.
        mutating func writeCode(_ code: Int, count: Int) {
            var reversed: UInt32 = 0
            for k in 0..<count { reversed |= UInt32(code >> k & 1) << UInt32(count - 1 - k) }
            write(reversed, count: count)
        }

        mutating func flush() {
            if used > 0 { bytes.append(UInt8(buffer & 0xFF)) }
            buffer = 0
            used = 0
        }
    }
}
