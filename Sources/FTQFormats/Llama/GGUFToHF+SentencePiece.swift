import FTQCore

extension SentencePieceModel {
    /// A special piece of `trainer_spec` (`unk`, `bos`, `eos`, `pad`): its id (-1: none) and text.
    public struct SpecialPiece: Sendable {
        public var id: Int
        public var text: String?
        public init(id: Int, text: String?) { self.id = id; self.text = text }
    }

    /// The serialized `ModelProto` of these pieces, settings and special pieces
    /// (formats/llama-gguf.md, "GGUF to Hugging Face"): field 1 the pieces (1 text, 2 score,
    /// 3 type), 2 `trainer_spec` (3 model_type, 4 vocab_size, 35 byte_fallback, 40-43 the
    /// unk/bos/eos/pad ids, 45-48 their texts), 3 `normalizer_spec` (1 name, 3
    /// add_dummy_prefix, 4 remove_extra_whitespaces false, 5 escape_whitespaces true).
    public func serialized(unk: SpecialPiece, bos: SpecialPiece, eos: SpecialPiece, pad: SpecialPiece) -> [UInt8] {
        var out: [UInt8] = []
        for p in pieces {
            var m = ProtoWriter()
            m.string(1, p.text)
            m.fixed32(2, p.score.bitPattern)
            m.varint(3, UInt64(p.type.rawValue))
            out += ProtoWriter.field(1, m.bytes)
        }
        var t = ProtoWriter()
        t.varint(3, UInt64(modelType.rawValue))
        t.varint(4, UInt64(pieces.count))
        t.varint(35, byteFallback ? 1 : 0)
        for (field, s) in [(40, unk), (41, bos), (42, eos), (43, pad)] {
            t.varint(field, UInt64(bitPattern: Int64(s.id))) // int32: negative as ten bytes
        }
        for (field, s) in [(45, unk), (46, bos), (47, eos), (48, pad)] {
            if let text = s.text { t.string(field, text) }
        }
        out += ProtoWriter.field(2, t.bytes)
        var n = ProtoWriter()
        if let name = normalizerName { n.string(1, name) }
        n.varint(3, addDummyPrefix ? 1 : 0)
        n.varint(4, 0)
        n.varint(5, 1)
        out += ProtoWriter.field(3, n.bytes)
        return out
    }
}

/// Protocol-buffer wire format, written (the counterpart of `ProtoReader`).
struct ProtoWriter {
    var bytes: [UInt8] = []

    static func encode(_ v: UInt64, into out: inout [UInt8]) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(v & 0x7f) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    mutating func varint(_ field: Int, _ v: UInt64) {
        Self.encode(UInt64(field) << 3, into: &bytes)
        Self.encode(v, into: &bytes)
    }

    mutating func fixed32(_ field: Int, _ v: UInt32) {
        Self.encode(UInt64(field) << 3 | 5, into: &bytes)
        bytes += [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)]
    }

    mutating func string(_ field: Int, _ s: String) {
        bytes += Self.field(field, Array(s.utf8))
    }

    /// A length-delimited field.
    static func field(_ field: Int, _ payload: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        encode(UInt64(field) << 3 | 2, into: &out)
        encode(UInt64(payload.count), into: &out)
        return out + payload
    }
}

extension GGUFToHF {
    /// tokenizer.model, tokenizer.json and tokenizer_config.json from a SentencePiece (`llama`)
    /// vocabulary, or none with a note when sentencepiece could not load the pieces
    /// (formats/llama-gguf.md, "GGUF to Hugging Face").
    func sentencePieceFiles(_ c: GGUFLlamaConfig) throws -> [(name: String, bytes: [UInt8])] {
        func bad(_ why: String) -> FTQError { FTQError.invalid("convert.tokenizer", file: model.path, why) }
        func skip(_ why: String) -> [(name: String, bytes: [UInt8])] {
            options.notice?("tokenizer.ggml.model \"llama\": \(why); no tokenizer files written")
            return []
        }
        let tokens = try strings("tokenizer.ggml.tokens", c, bad)
        var scores = [Float](repeating: 0, count: tokens.count)
        if let v = c.meta["tokenizer.ggml.scores"] {
            guard case let .array(a) = v, a.count == tokens.count else {
                throw bad("metadata key \"tokenizer.ggml.scores\" must be an array of \(tokens.count) floats, one per token")
            }
            scores = try a.values.map { s in
                if case let .f32(x) = s { return x }
                throw bad("metadata key \"tokenizer.ggml.scores\" holds \(s.typeName), not a float32")
            }
        }
        let types = try tokenTypes(count: tokens.count, c, bad)
        func specialID(_ key: String) throws -> Int? { try tokenID(key, count: tokens.count, c, bad) }
        // What sentencepiece requires of a model: pieces non-empty and distinct, of a known
        // type, one unknown piece, byte pieces named <0xXX>.
        var spm = SentencePieceModel()
        var ids: [ExactName: Int] = [:]
        var unknownID: Int? = nil
        for (id, token) in tokens.enumerated() {
            guard !token.isEmpty else { return skip("token \(id) is empty, which sentencepiece refuses") }
            if let other = ids.updateValue(id, forKey: ExactName(token)) {
                return skip("tokens \(other) and \(id) are both \(JSONText.quote(token)), which sentencepiece refuses")
            }
            guard let type = SentencePieceModel.PieceType(rawValue: types[id]) else {
                return skip("token \(id) has type \(types[id]), not a SentencePiece type (1 to 6)")
            }
            if type == .unknown {
                if let u = unknownID { return skip("tokens \(u) and \(id) are both unknown (type 2); sentencepiece needs one") }
                unknownID = id
            }
            if type == .byte, !LlamaTokenizer.isByteToken(token) {
                return skip("byte token \(id) is \(JSONText.quote(token)), not <0xXX>")
            }
            spm.pieces.append(.init(text: token, score: scores[id], type: type))
        }
        // No unknown token (a control <unk>, as convert_hf_to_gguf makes from
        // added_tokens_decoder): tokenizer.ggml.unknown_token_id, else "<unk>", is the model's.
        if unknownID == nil {
            unknownID = try specialID("unknown_token_id") ?? tokens.firstIndex(of: "<unk>")
            guard let u = unknownID else { return skip("no token is unknown (type 2); sentencepiece needs one") }
            if !(types[u] == 3 && scores[u] == -1000) {
                options.notice?("tokenizer.model: token \(u) \(JSONText.quote(tokens[u])) (type \(types[u])) is written as sentencepiece's unknown piece, which reads back as type 2")
            }
            spm.pieces[u].type = .unknown
        }
        let unknown: Int = unknownID ?? 0
        spm.modelType = .bpe
        // sentencepiece takes byte pieces only with byte_fallback, and that only with all 256.
        let byteCount = spm.pieces.filter { $0.type == .byte }.count
        if byteCount != 0 && byteCount != 256 {
            return skip("\(byteCount) byte tokens, where sentencepiece needs all 256 or none")
        }
        spm.byteFallback = byteCount == 256
        spm.normalizerName = "identity"
        func flag(_ key: String) throws -> Bool? { try self.flag(key, c, bad) }
        let addSpace = try flag("add_space_prefix")
        spm.addDummyPrefix = addSpace ?? true
        func piece(_ id: Int?) -> SentencePieceModel.SpecialPiece { .init(id: id ?? -1, text: id.map { tokens[$0] }) }
        let bosID = try specialID("bos_token_id"), eosID = try specialID("eos_token_id")
        let modelBytes = spm.serialized(unk: piece(try specialID("unknown_token_id") ?? unknown), bos: piece(bosID), eos: piece(eosID),
                                   pad: piece(try specialID("padding_token_id")))

        // tokenizer.json: the same pieces as a BPE with byte fallback, as Llama 2's.
        var vocab: [(String, JSONValue)] = []
        var added: [JSONValue] = []
        for (id, token) in tokens.enumerated() {
            vocab.append((token, .int(id)))
            if [2, 3, 4].contains(types[id]) {
                added.append(.object([
                    ("id", .int(id)), ("content", .string(token)), ("single_word", .bool(false)), ("lstrip", .bool(false)),
                    ("rstrip", .bool(false)), ("normalized", .bool(false)), ("special", .bool(types[id] != 4)),
                ]))
            }
        }
        let addBos = try flag("add_bos_token"), addEos = try flag("add_eos_token")
        for (on, id, key) in [(addBos, bosID, "bos"), (addEos, eosID, "eos")] where on == true && id == nil {
            throw bad("tokenizer.ggml.add_\(key)_token is true but tokenizer.ggml.\(key)_token_id is absent")
        }
        let template = Self.bosEosTemplate(bos: addBos == true ? bosID.map { (tokens[$0], $0) } : nil,
                                           eos: addEos == true ? eosID.map { (tokens[$0], $0) } : nil)
        var decoders: [JSONValue] = [
            .object([("type", .string("Replace")), ("pattern", .object([("String", .string("\u{2581}"))])), ("content", .string(" "))]),
            .object([("type", .string("ByteFallback"))]),
            .object([("type", .string("Fuse"))]),
        ]
        if spm.addDummyPrefix {
            decoders.append(.object([("type", .string("Strip")), ("content", .string(" ")), ("start", .int(1)), ("stop", .int(0))]))
        }
        let tokenizer: JSONValue = .object([
            ("version", .string("1.0")),
            ("truncation", .null),
            ("padding", .null),
            ("added_tokens", .array(added)),
            ("normalizer", .null),
            ("pre_tokenizer", .object([("type", .string("Metaspace")), ("replacement", .string("\u{2581}")),
                                       ("prepend_scheme", .string(spm.addDummyPrefix ? "first" : "never")), ("split", .bool(false))])),
            ("post_processor", template),
            ("decoder", .object([("type", .string("Sequence")), ("decoders", .array(decoders))])),
            ("model", .object([
                ("type", .string("BPE")), ("dropout", .null), ("unk_token", .string(tokens[unknown])),
                ("continuing_subword_prefix", .null), ("end_of_word_suffix", .null), ("fuse_unk", .bool(true)),
                ("byte_fallback", .bool(spm.byteFallback)), ("ignore_merges", .bool(false)),
                ("vocab", .object(vocab)),
                ("merges", .array(Self.sentencePieceMerges(spm.pieces).map { .array([.string($0.0), .string($0.1)]) })),
            ])),
        ])

        var config: [(String, JSONValue)] = [
            ("clean_up_tokenization_spaces", .bool(false)),
            ("legacy", .bool(false)),
            ("model_max_length", .int(c.contextLength)),
            ("tokenizer_class", .string("LlamaTokenizer")),
        ]
        for (name, key) in [("add_bos_token", "add_bos_token"), ("add_eos_token", "add_eos_token"),
                            ("add_prefix_space", "add_space_prefix")] {
            if let b = try flag(key) { config.append((name, .bool(b))) }
        }
        for (name, key) in GGUFLlamaConfig.specialTokens {
            if let id = try specialID(key) { config.append((name, .string(tokens[id]))) }
        }
        // User-defined tokens as `convert HFDIR` reads them back (score -1000, user-defined):
        // those that read back unchanged (not looking special, no "▁").
        var decoder: [(String, JSONValue)] = []
        for (id, token) in tokens.enumerated() where (types[id] == 3 || types[id] == 4) && scores[id] == -1000 {
            let special = types[id] == 3
            guard special || (!LlamaTokenizer.looksSpecial(token) && !token.unicodeScalars.contains("\u{2581}")) else { continue }
            decoder.append((String(id), .object([("content", .string(token)), ("lstrip", .bool(false)), ("normalized", .bool(false)),
                                                 ("rstrip", .bool(false)), ("single_word", .bool(false)), ("special", .bool(special))])))
        }
        if !decoder.isEmpty { config.append(("added_tokens_decoder", .object(decoder))) }
        switch c.meta["tokenizer.chat_template"] {
        case let .string(t)?: config.append(("chat_template", .string(t)))
        case nil: break
        case let v?: throw bad("metadata key \"tokenizer.chat_template\" must be a string, not \(v.typeName)")
        }
        config.sort { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
        return [
            ("tokenizer.model", modelBytes),
            ("tokenizer.json", Array((JSONText.serialize(tokenizer, indent: 2) + "\n").utf8)),
            ("tokenizer_config.json", GGUFLlamaConfig.file(config, asciiOnly: false)),
        ]
    }

    /// The merges of a SentencePiece BPE as a tokenizers BPE applies them: every split of a
    /// normal piece into two normal pieces, the piece with the higher score first (sentencepiece
    /// merges the pair whose piece scores highest), ties by the piece's id, then by the left
    /// and the right part's ids.
    static func sentencePieceMerges(_ pieces: [SentencePieceModel.Piece]) -> [(String, String)] {
        var normal: [ExactName: Int] = [:]
        for (id, p) in pieces.enumerated() where p.type == .normal { normal[ExactName(p.text)] = id }
        var found: [(score: Float, id: Int, left: Int, right: Int, pair: (String, String))] = []
        for (id, p) in pieces.enumerated() where p.type == .normal {
            let scalars = Array(p.text.unicodeScalars)
            guard scalars.count > 1 else { continue }
            for k in 1..<scalars.count {
                var l = String.UnicodeScalarView(), r = String.UnicodeScalarView()
                l.append(contentsOf: scalars[..<k]); r.append(contentsOf: scalars[k...])
                let left = String(l), right = String(r)
                if let li = normal[ExactName(left)], let ri = normal[ExactName(right)] {
                    found.append((p.score, id, li, ri, (left, right)))
                }
            }
        }
        found.sort { a, b in
            if a.score != b.score { return a.score > b.score }
            if a.id != b.id { return a.id < b.id }
            if a.left != b.left { return a.left < b.left }
            return a.right < b.right
        }
        return found.map(\.pair)
    }
}
