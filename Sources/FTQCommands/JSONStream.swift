import FTQCore
import FTQFormats
#if canImport(Glibc)
import Glibc
#endif

/// Pretty-printed JSON written to standard output as it is produced, in the same layout as
/// `JSONText.serialize(_:indent: 2)`. Large GGUF arrays are streamed element by element, so
/// `inspect --json` never holds a second copy of the metadata.
struct JSONStream {
    private var buffer: [UInt8] = []
    let indent = 2

    init() { buffer.reserveCapacity(1 << 20) }

    /// The first write error, reported by ``finish()``.
    private var failure: Int32 = 0

    mutating func raw(_ s: String) {
        buffer.append(contentsOf: s.utf8)
        if buffer.count >= 1 << 20 { flush() }
    }

    /// Flushes and reports a failed write (a full disk, a closed pipe) as an I/O error.
    mutating func finish() throws {
        flush()
        if failure != 0 {
            throw FTQError.io("io.write", file: "standard output", "write failed: \(systemError(failure))")
        }
    }

    mutating func newline(_ level: Int) {
        raw("\n" + String(repeating: " ", count: indent * level))
    }

    /// A complete JSON value at nesting `level`.
    mutating func value(_ v: JSONValue, level: Int) {
        raw(JSONText.serialize(v, indent: indent, level: level))
    }

    /// A GGUF metadata value, arrays streamed.
    mutating func gguf(_ v: GGUFValue, level: Int) {
        guard case let .array(a) = v else { return value(v.json, level: level) }
        if a.count == 0 { return raw("[]") }
        raw("[")
        var first = true
        a.forEach { item in
            if !first { raw(",") }
            first = false
            newline(level + 1)
            gguf(item, level: level + 1)
        }
        newline(level)
        raw("]")
    }

    /// An object whose members are written by `body`, one `member` call each.
    mutating func object(level: Int, _ body: (inout JSONStream, inout Bool) -> Void) {
        raw("{")
        var first = true
        body(&self, &first)
        if !first { newline(level) }
        raw("}")
    }

    /// Starts a member: separator, indentation and key.
    mutating func key(_ k: String, level: Int, first: inout Bool) {
        if !first { raw(",") }
        first = false
        newline(level + 1)
        raw(JSONText.quote(k) + ": ")
    }

    mutating func flush() {
        if failure == 0 {
            failure = buffer.withUnsafeBytes { b -> Int32 in
                var done = 0
                while done < b.count {
                    let n = write(1, b.baseAddress! + done, b.count - done)
                    if n < 0 { if errno == EINTR { continue }; return errno }
                    if n == 0 { return EIO }
                    done += n
                }
                return 0
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
}

/// Writes `text` to standard output, reporting a failed write as an I/O error (exit 4).
///
/// Results are only printed from inputs that did not change while ftq read them
/// (`io.input-changed`, formats/cli.md "Inputs"): compare, hash and verify report figures and
/// digests of what they read.
func printOut(_ text: String) throws {
    try InputFile.checkInputsUnchanged()
    var out = JSONStream()
    out.raw(text)
    try out.finish()
}
