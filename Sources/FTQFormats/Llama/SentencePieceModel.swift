import FTQCore

/// A SentencePiece `tokenizer.model` (the `ModelProto` protocol buffer of the sentencepiece
/// library), read for what a llama.cpp vocabulary needs (formats/llama-gguf.md, "Tokenizer"):
/// every piece's text, score and type, and the trainer and normalizer settings that say how
/// llama.cpp will tokenize with it.
///
/// The reader is a small protocol-buffer decoder that checks every length and tag against the
/// bytes that remain; fields it does not need are skipped by their wire type, as protobuf
/// readers do, so files from newer sentencepiece versions read too.
public struct SentencePieceModel: Sendable {
    /// sentencepiece's piece types (`ModelProto.SentencePiece.Type`).
    public enum PieceType: Int, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    public struct Piece: Sendable, Equatable {
        public var text: String
        public var score: Float
        public var type: PieceType
    }

    /// `TrainerSpec.ModelType`.
    public enum ModelType: Int, Sendable {
        case unigram = 1, bpe = 2, word = 3, char = 4
    }

    public var pieces: [Piece] = []
    /// `trainer_spec.model_type` (sentencepiece's default: unigram).
    public var modelType: ModelType = .unigram
    /// `trainer_spec.byte_fallback`: unknown characters become `<0xXX>` byte pieces.
    public var byteFallback = false
    /// `normalizer_spec.add_dummy_prefix`: a space is put before the text (default true).
    public var addDummyPrefix = true
    /// `normalizer_spec.name` (e.g. `identity`, `nmt_nfkc`), when given.
    public var normalizerName: String? = nil

    /// The most pieces read: far above real vocabularies (256,000 for Gemma).
    public static let maxPieces = 1 << 24

    /// Reads `tokenizer.model` at `path` (at most `CompanionFiles.maxBytes`).
    public static func read(_ path: String) throws -> SentencePieceModel {
        let f = try InputFile(path)
        guard f.size <= CompanionFiles.maxBytes else {
            throw FTQError.invalid("tokenizer.model-too-large", file: path, "larger than 64 MiB; a SentencePiece model is a few MB at most")
        }
        var bytes = [UInt8](repeating: 0, count: f.size)
        try bytes.withUnsafeMutableBytes { try f.read(into: $0, at: 0) }
        do { return try parse(bytes) } catch let e as FTQError { throw e.inFile(path) }
    }

    /// Parses a serialized `ModelProto`. Errors have code `tokenizer.model` and give the byte
    /// offset.
    public static func parse(_ bytes: [UInt8]) throws -> SentencePieceModel {
        var m = SentencePieceModel()
        try bytes.withUnsafeBufferPointer { buf in
            var r = ProtoReader(buf, start: 0, end: buf.count)
            while let (field, wire) = try r.tag() {
                switch (field, wire) {
                case (1, .bytes):
                    guard m.pieces.count < maxPieces else { throw r.fail("more than \(maxPieces) pieces") }
                    var sub = try r.message()
                    m.pieces.append(try piece(&sub))
                case (2, .bytes):
                    var sub = try r.message()
                    while let (f, w) = try sub.tag() {
                        switch (f, w) {
                        case (3, .varint):
                            let v = try sub.varint()
                            guard let t = ModelType(rawValue: Int(truncatingIfNeeded: v)), v <= 4 else { throw sub.fail("unknown model_type \(v)") }
                            m.modelType = t
                        case (35, .varint): m.byteFallback = try sub.varint() != 0
                        default: try sub.skip(w)
                        }
                    }
                case (3, .bytes):
                    var sub = try r.message()
                    while let (f, w) = try sub.tag() {
                        switch (f, w) {
                        case (1, .bytes): m.normalizerName = try sub.string("normalizer name")
                        case (3, .varint): m.addDummyPrefix = try sub.varint() != 0
                        default: try sub.skip(w)
                        }
                    }
                default:
                    try r.skip(wire)
                }
            }
        }
        guard !m.pieces.isEmpty else { throw FTQError.invalid("tokenizer.model", "no pieces: not a SentencePiece model") }
        return m
    }

    private static func piece(_ r: inout ProtoReader) throws -> Piece {
        var p = Piece(text: "", score: 0, type: .normal)
        var hasText = false
        while let (f, w) = try r.tag() {
            switch (f, w) {
            case (1, .bytes): p.text = try r.string("piece"); hasText = true
            case (2, .fixed32): p.score = Float(bitPattern: try r.fixed32())
            case (3, .varint):
                let v = try r.varint()
                guard v <= 6, let t = PieceType(rawValue: Int(v)) else { throw r.fail("unknown piece type \(v)") }
                p.type = t
            default: try r.skip(w)
            }
        }
        guard hasText else { throw r.fail("a piece without its text") }
        return p
    }
}

/// Protocol-buffer wire format over a byte range, every read checked against its end.
struct ProtoReader {
    enum Wire: UInt64 { case varint = 0, fixed64 = 1, bytes = 2, startGroup = 3, endGroup = 4, fixed32 = 5 }

    let buf: UnsafeBufferPointer<UInt8>
    var at: Int
    let end: Int

    init(_ buf: UnsafeBufferPointer<UInt8>, start: Int, end: Int) {
        self.buf = buf
        self.at = start
        self.end = end
    }

    func fail(_ why: String) -> FTQError {
        FTQError.invalid("tokenizer.model", "byte \(at): \(why); not a valid SentencePiece model")
    }

    mutating func varint() throws -> UInt64 {
        var v: UInt64 = 0
        for shift in stride(from: 0, to: 70, by: 7) {
            guard at < end else { throw fail("truncated number") }
            let b = buf[at]
            at += 1
            guard shift < 64 else { throw fail("number longer than 10 bytes") }
            v |= UInt64(b & 0x7f) << UInt64(shift)
            if b & 0x80 == 0 { return v }
        }
        throw fail("number longer than 10 bytes")
    }

    /// The next field number and wire type, or nil at the end.
    mutating func tag() throws -> (Int, Wire)? {
        guard at < end else { return nil }
        let t = try varint()
        guard let w = Wire(rawValue: t & 7) else { throw fail("wire type \(t & 7)") }
        let field = t >> 3
        guard field >= 1, field <= 536_870_911 else { throw fail("field number \(field)") }
        return (Int(field), w)
    }

    /// A length-delimited field's range.
    mutating func lengthDelimited() throws -> Range<Int> {
        let n = try varint()
        guard n <= UInt64(end - at) else { throw fail("a field of \(n) bytes where \(end - at) remain") }
        let r = at..<(at + Int(n))
        at += Int(n)
        return r
    }

    mutating func message() throws -> ProtoReader {
        let r = try lengthDelimited()
        return ProtoReader(buf, start: r.lowerBound, end: r.upperBound)
    }

    mutating func string(_ what: String) throws -> String {
        let r = try lengthDelimited()
        guard let s = String(validating: buf[r], as: UTF8.self) else { throw fail("\(what) is not UTF-8") }
        return s
    }

    mutating func fixed32() throws -> UInt32 {
        guard end - at >= 4 else { throw fail("truncated 32-bit value") }
        let v = UInt32(buf[at]) | UInt32(buf[at + 1]) << 8 | UInt32(buf[at + 2]) << 16 | UInt32(buf[at + 3]) << 24
        at += 4
        return v
    }

    mutating func skip(_ w: Wire) throws {
        switch w {
        case .varint: _ = try varint()
        case .fixed64:
            guard end - at >= 8 else { throw fail("truncated 64-bit value") }
            at += 8
        case .fixed32: _ = try fixed32()
        case .bytes: _ = try lengthDelimited()
        case .startGroup, .endGroup: throw fail("protobuf groups, which SentencePiece models never use")
        }
    }
}
