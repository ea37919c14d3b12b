/// A string compared and hashed by its exact UTF-8 bytes.
///
/// Swift's `String` equality is Unicode canonical equivalence: "é" (U+00E9) equals
/// "e" + U+0301. Tensor names and metadata keys in model files are byte strings to every
/// peer (safetensors, gguf-py, ggml), so ftq keys its name tables by bytes: two names that
/// differ in any byte are two names (formats/safetensors.md, "Header JSON").
public struct ExactName: Hashable, Sendable {
    public let string: String
    public init(_ s: String) { string = s }

    public static func == (a: ExactName, b: ExactName) -> Bool {
        a.string.utf8.elementsEqual(b.string.utf8)
    }

    public func hash(into hasher: inout Hasher) {
        var s = string
        s.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

extension String {
    /// Byte-exact prefix test (`hasPrefix` compares grapheme clusters: "/\u{301}" does not
    /// start with "/", though its bytes do).
    public func hasBytePrefix(_ prefix: String) -> Bool { utf8.starts(with: prefix.utf8) }

    /// Byte-exact suffix test.
    public func hasByteSuffix(_ suffix: String) -> Bool {
        utf8.count >= suffix.utf8.count && utf8.reversed().starts(with: suffix.utf8.reversed())
    }
}
