import CZstd
import FTQCore

/// The zstd frames of a pack (formats/ftqz.md, "Frames"): one frame per chunk, with the
/// content size in its header, a single segment (no window descriptor), a content checksum
/// and no dictionary.
public enum ZstdFrame {
    /// No frame of this form is shorter: magic, descriptor, a 1-byte content size, one block
    /// header and its byte, the checksum.
    public static let minimumSize = 14

    /// The most bytes a frame of `n` bytes may take: zstd's bound, plus a block header for
    /// each of the up to 3 extra blocks that byte planes start, rounded up (rule F2).
    public static func compressBound(_ n: Int) -> Int { ZSTD_compressBound(n) + 64 }

    /// Checks that `frame` is exactly one frame of the form the writer makes, holding `size`
    /// bytes (rule F4). Returns what is wrong, or nil.
    public static func check(_ frame: UnsafeRawBufferPointer, size: Int) -> String? {
        guard frame.count >= minimumSize else { return "shorter than any frame" }
        guard frame[0] == 0x28, frame[1] == 0xB5, frame[2] == 0x2F, frame[3] == 0xFD else { return "no zstd frame magic" }
        let fhd = frame[4]
        // Bits 1-0: no dictionary id; 2: checksum; 3: reserved; 4: unused; 5: single segment.
        guard fhd & 0x3F == 0x24 else {
            return "its frame header descriptor is 0b\(String(fhd, radix: 2)), not single-segment with a checksum and no dictionary (0bxx100100)"
        }
        let content = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        guard content == UInt64(size) else { return "the frame header declares another content size" }
        let length = ZSTD_findFrameCompressedSize(frame.baseAddress, frame.count)
        if ZSTD_isError(length) != 0 { return "the frame's blocks do not parse: \(errorName(length))" }
        guard length == frame.count else { return "the frame's blocks end at byte \(length) of \(frame.count)" }
        return nil
    }

    static func errorName(_ code: Int) -> String { String(cString: ZSTD_getErrorName(code)) }
}

/// A zstd compression context; one per thread.
final class ZstdCompressor: @unchecked Sendable {
    private let cctx: OpaquePointer
    let level: Int

    /// Byte-plane frames are compressed with a minimum match length of 7: the exponent plane
    /// is nearly all literals, and short matches cost more to encode than they save.
    static let planeMinMatch: Int32 = 7

    init(level: Int) {
        cctx = ZSTD_createCCtx()!
        self.level = level
    }

    deinit { ZSTD_freeCCtx(cctx) }

    /// Compresses `count` bytes into `dst`; returns the frame's length. The parameters depend
    /// only on the level, the length and the plane count, so the bytes are deterministic.
    func compress(_ src: UnsafeRawPointer, count: Int, planes: Int, into dst: UnsafeMutableRawBufferPointer) throws -> Int {
        // A window as large as the frame: zstd then writes a single-segment frame header.
        var windowLog: Int32 = 10
        while (1 << windowLog) < count { windowLog += 1 }
        try set(ZSTD_c_compressionLevel, Int32(level))
        try set(ZSTD_c_windowLog, windowLog)
        try set(ZSTD_c_minMatch, planes > 1 ? Self.planeMinMatch : 0)
        try set(ZSTD_c_checksumFlag, 1)
        try set(ZSTD_c_contentSizeFlag, 1)
        try set(ZSTD_c_nbWorkers, 0)
        if planes <= 1 {
            let r = ZSTD_compress2(cctx, dst.baseAddress, dst.count, src, count)
            if ZSTD_isError(r) != 0 {
                throw FTQError.io("ftqz.compress", "zstd compression failed: \(ZstdFrame.errorName(r))")
            }
            return r
        }
        // Byte planes: each plane ends a block, so that no block mixes two planes (a block's
        // literals share one Huffman table, which would then fit neither).
        ZSTD_CCtx_reset(cctx, ZSTD_reset_session_only)
        let pledged = ZSTD_CCtx_setPledgedSrcSize(cctx, UInt64(count))
        if ZSTD_isError(pledged) != 0 {
            throw FTQError.io("ftqz.compress", "zstd compression failed: \(ZstdFrame.errorName(pledged))")
        }
        let m = count / planes
        var output = ZSTD_outBuffer(dst: dst.baseAddress, size: dst.count, pos: 0)
        for k in 0..<planes {
            var input = ZSTD_inBuffer(src: src + k * m, size: m, pos: 0)
            let mode = k == planes - 1 ? ZSTD_e_end : ZSTD_e_flush
            while true {
                let r = ZSTD_compressStream2(cctx, &output, &input, mode)
                if ZSTD_isError(r) != 0 {
                    throw FTQError.io("ftqz.compress", "zstd compression failed: \(ZstdFrame.errorName(r))")
                }
                if r == 0 && input.pos == input.size { break }
                if output.pos == output.size {
                    throw FTQError.io("ftqz.compress", "zstd compression needs more room than the frame buffer")
                }
            }
        }
        return output.pos
    }

    private func set(_ p: ZSTD_cParameter, _ v: Int32) throws {
        let r = ZSTD_CCtx_setParameter(cctx, p, v)
        if ZSTD_isError(r) != 0 {
            throw FTQError.usage("ftqz.zstd-parameter", "zstd refused a parameter (\(v)): \(ZstdFrame.errorName(r))")
        }
    }
}

/// A zstd decompression context; one per thread.
final class ZstdDecompressor: @unchecked Sendable {
    private let dctx: OpaquePointer

    init() { dctx = ZSTD_createDCtx()! }
    deinit { ZSTD_freeDCtx(dctx) }

    /// Decompresses one checked frame into exactly `size` bytes of `dst`; returns nil, or
    /// zstd's reason for refusing the frame.
    func decompress(_ frame: UnsafeRawBufferPointer, size: Int, into dst: UnsafeMutableRawPointer) -> String? {
        let r = ZSTD_decompressDCtx(dctx, dst, size, frame.baseAddress, frame.count)
        if ZSTD_isError(r) != 0 { return ZstdFrame.errorName(r) }
        if r != size { return "it holds \(r) bytes, not \(size)" }
        return nil
    }
}
