import COpenSSL
import FTQCore

/// Streaming SHA-256 through OpenSSL's EVP interface (libcrypto).
public final class SHA256Hasher {
    private let ctx: OpaquePointer

    public init() {
        ctx = EVP_MD_CTX_new()!
        EVP_DigestInit_ex(ctx, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(ctx) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        if bytes.count > 0 { EVP_DigestUpdate(ctx, bytes.baseAddress, bytes.count) }
    }

    public func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// The digest as 64 lowercase hex digits; the hasher cannot be used afterwards.
    public func finalizeHex() -> String {
        var md = [UInt8](repeating: 0, count: 32)
        var len: UInt32 = 0
        EVP_DigestFinal_ex(ctx, &md, &len)
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in md { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// The SHA-256 of a file, read with `pread` into one reused buffer.
    public static func hashFile(_ file: InputFile, bufferSize: Int = 4 << 20) throws -> String {
        let h = SHA256Hasher()
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: bufferSize, alignment: 4096)
        defer { buf.deallocate() }
        var off = 0
        while off < file.size {
            let n = min(bufferSize, file.size - off)
            let slice = UnsafeMutableRawBufferPointer(rebasing: buf[0..<n])
            try file.read(into: slice, at: off)
            h.update(UnsafeRawBufferPointer(slice))
            off += n
        }
        return h.finalizeHex()
    }
}
