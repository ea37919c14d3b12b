import FTQCore

extension GGUFToHF {
    /// llama.cpp's pre-tokenizer names ftq writes back as a tokenizer.json `pre_tokenizer`.
    static let preTokenizers = ["gpt-2", "llama-bpe"]

    /// tokenizer.json and tokenizer_config.json from the GGUF's vocabulary, when it is a
    /// byte-level BPE (`tokenizer.ggml.model` "gpt2") with a pre-tokenizer ftq can write
    /// exactly, with tokenizer.model for a SentencePiece one ("llama",
    /// `sentencePieceFiles`); otherwise none, with a note saying why (formats/llama-gguf.md, "GGUF to Hugging
    /// Face"). The inverse of `LlamaTokenizer.metadata`.
    func tokenizerFiles(_ c: GGUFLlamaConfig) throws -> [(name: String, bytes: [UInt8])] {
        func bad(_ why: String) -> FTQError { FTQError.invalid("convert.tokenizer", file: model.path, why) }
        switch c.meta["tokenizer.ggml.model"] {
        case .string("gpt2")?: break
        case .string("llama")?: return try sentencePieceFiles(c)
        case .string("none")?, nil:
            options.notice?("the GGUF has no vocabulary (tokenizer.ggml.model \"none\" or absent): no tokenizer files written")
            return []
        case let .string(m)?:
            options.notice?("tokenizer.ggml.model \(JSONText.quote(m)) is not converted to tokenizer files yet (ftq writes byte-level BPE, \"gpt2\", and SentencePiece, \"llama\"): no tokenizer files written")
            return []
        case let v?:
            throw bad("metadata key \"tokenizer.ggml.model\" must be a string, not \(v.typeName)")
        }
        guard case let .string(pre)? = c.meta["tokenizer.ggml.pre"], Self.preTokenizers.contains(pre) else {
            let name = c.meta["tokenizer.ggml.pre"].map { JSONText.serialize($0.json) } ?? "absent"
            options.notice?("tokenizer.ggml.pre \(name) is not a pre-tokenizer ftq writes exactly (gpt-2, llama-bpe): no tokenizer files written")
            return []
        }
        let tokens = try strings("tokenizer.ggml.tokens", c, bad)
        let merges = try strings("tokenizer.ggml.merges", c, bad)
        let types = try tokenTypes(count: tokens.count, c, bad)

        // The vocabulary by id, without the placeholders that pad it to the model's size.
        var vocab: [(String, JSONValue)] = []
        var ids: [ExactName: Int] = [:]
        var added: [JSONValue] = []
        var inVocab = [Bool](repeating: false, count: tokens.count)
        for (id, token) in tokens.enumerated() {
            if types[id] == 5 && token == "[PAD\(id)]" { continue }
            if let other = ids.updateValue(id, forKey: ExactName(token)) {
                throw bad("tokens \(other) and \(id) are both \(JSONText.quote(token)); a tokenizer.json vocabulary maps each string to one id")
            }
            vocab.append((token, .int(id)))
            inVocab[id] = true
            if types[id] == 3 || types[id] == 4 {
                added.append(.object([
                    ("id", .int(id)), ("content", .string(token)), ("single_word", .bool(false)), ("lstrip", .bool(false)),
                    ("rstrip", .bool(false)), ("normalized", .bool(false)), ("special", .bool(types[id] == 3)),
                ]))
            }
        }
        // Merges in the "a b" form, exactly as the GGUF has them (tokenizers splits them as
        // llama.cpp does, at the first space after the first character... of a byte-level token,
        // which holds no space).
        for m in merges where !m.utf8.dropFirst().contains(0x20) {
            throw bad("merge \(JSONText.quote(m)) is not two tokens separated by a space")
        }

        // Special tokens by content, where the id is one of the vocabulary's.
        func special(_ key: String) throws -> String? {
            guard let id = try tokenID(key, count: tokens.count, c, bad) else { return nil }
            return inVocab[id] ? tokens[id] : nil
        }
        func flag(_ key: String) throws -> Bool? { try self.flag(key, c, bad) }
        let bos = try special("bos_token_id"), eos = try special("eos_token_id")
        let addBos = try flag("add_bos_token"), addEos = try flag("add_eos_token")

        // Post-processing: byte-level offsets, then bos / eos where the GGUF adds them.
        let byteLevel: JSONValue = .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(true)),
                                            ("trim_offsets", .bool(false)), ("use_regex", .bool(true))])
        for (on, token, key) in [(addBos, bos, "bos_token_id"), (addEos, eos, "eos_token_id")] where on == true && token == nil {
            throw bad("tokenizer.ggml.add_\(key.prefix(3))_token is true but tokenizer.ggml.\(key) names no token of the vocabulary")
        }
        let template = Self.bosEosTemplate(bos: addBos == true ? bos.map { ($0, ids[ExactName($0)]!) } : nil,
                                           eos: addEos == true ? eos.map { ($0, ids[ExactName($0)]!) } : nil)
        let post: JSONValue = addBos == true || addEos == true
            ? .object([("type", .string("Sequence")), ("processors", .array([byteLevel, template]))]) : byteLevel
        let preTokenizer = Self.preTokenizer(pre)
        // The definition written is the one `convert HFDIR -o NAME.gguf` names `pre`.
        guard LlamaTokenizer.preName(preTokenizer) == pre else {
            throw FTQError.invalid("internal.tokenizer", file: model.path, "the pre-tokenizer written for \(pre) does not read back as \(pre)")
        }
        let tokenizer: JSONValue = .object([
            ("version", .string("1.0")),
            ("truncation", .null),
            ("padding", .null),
            ("added_tokens", .array(added)),
            ("normalizer", .null),
            ("pre_tokenizer", preTokenizer),
            ("post_processor", post),
            ("decoder", .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(true)),
                                 ("trim_offsets", .bool(true)), ("use_regex", .bool(true))])),
            ("model", .object([
                ("type", .string("BPE")), ("dropout", .null), ("unk_token", .null), ("continuing_subword_prefix", .null),
                ("end_of_word_suffix", .null), ("fuse_unk", .bool(false)), ("byte_fallback", .bool(false)),
                // llama.cpp's llama-bpe takes a word that is one token whole, as Llama 3's tokenizer.json says.
                ("ignore_merges", .bool(pre == "llama-bpe")),
                ("vocab", .object(vocab)),
                ("merges", .array(merges.map { .string($0) })),
            ])),
        ])

        var config: [(String, JSONValue)] = [
            ("clean_up_tokenization_spaces", .bool(false)),
            ("model_max_length", .int(c.contextLength)),
            ("tokenizer_class", .string("PreTrainedTokenizerFast")),
        ]
        for (name, key) in [("add_bos_token", "add_bos_token"), ("add_eos_token", "add_eos_token"),
                            ("add_sep_token", "add_sep_token"), ("add_prefix_space", "add_space_prefix")] {
            if let b = try flag(key) { config.append((name, .bool(b))) }
        }
        for (name, key) in GGUFLlamaConfig.specialTokens {
            if let token = try special(key) { config.append((name, .string(token))) }
        }
        switch c.meta["tokenizer.chat_template"] {
        case let .string(t)?: config.append(("chat_template", .string(t)))
        case nil: break
        case let v?: throw bad("metadata key \"tokenizer.chat_template\" must be a string, not \(v.typeName)")
        }
        config.sort { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
        return [
            ("tokenizer.json", Array((JSONText.serialize(tokenizer, indent: 2) + "\n").utf8)),
            ("tokenizer_config.json", GGUFLlamaConfig.file(config, asciiOnly: false)),
        ]
    }

    /// tokenizer.json's `TemplateProcessing` that adds `bos` and `eos` (token, id) where given:
    /// single [bos] $A [eos]; pair [bos] $A $B:1 [eos:1], with nothing between the two
    /// sequences, so that reading the template back (as gguf-py's SpecialVocab does) finds
    /// add_bos_token and add_eos_token as the GGUF says and no separator.
    static func bosEosTemplate(bos: (String, Int)?, eos: (String, Int)?) -> JSONValue {
        func special(_ token: String, _ typeID: Int) -> JSONValue {
            .object([("SpecialToken", .object([("id", .string(token)), ("type_id", .int(typeID))]))])
        }
        func sequence(_ s: String, _ typeID: Int) -> JSONValue {
            .object([("Sequence", .object([("id", .string(s)), ("type_id", .int(typeID))]))])
        }
        var single: [JSONValue] = [], pair: [JSONValue] = []
        var specials: [(String, JSONValue)] = []
        for (token, id) in [bos, eos].compactMap({ $0 }) where !specials.contains(where: { ExactName($0.0) == ExactName(token) }) {
            specials.append((token, .object([("id", .string(token)), ("ids", .array([.int(id)])), ("tokens", .array([.string(token)]))])))
        }
        if let (token, _) = bos { single.append(special(token, 0)); pair.append(special(token, 0)) }
        single.append(sequence("A", 0))
        pair += [sequence("A", 0), sequence("B", 1)]
        if let (token, _) = eos { single.append(special(token, 0)); pair.append(special(token, 1)) }
        return .object([("type", .string("TemplateProcessing")), ("single", .array(single)),
                        ("pair", .array(pair)), ("special_tokens", .object(specials))])
    }

    /// A string-array key of the vocabulary.
    func strings(_ key: String, _ c: GGUFLlamaConfig, _ bad: (String) -> FTQError) throws -> [String] {
        guard case let .array(a)? = c.meta[key], a.elementType == .string else {
            throw bad("metadata key \"\(key)\" is missing or not an array of strings; a byte-level BPE vocabulary needs it")
        }
        return a.values.map { v in
            if case let .string(s) = v { return s }
            return ""
        }
    }

    /// `tokenizer.ggml.token_type`, one per token (1, normal, for every token when absent).
    func tokenTypes(count: Int, _ c: GGUFLlamaConfig, _ bad: (String) -> FTQError) throws -> [Int] {
        guard let v = c.meta["tokenizer.ggml.token_type"] else { return [Int](repeating: 1, count: count) }
        guard case let .array(a) = v, a.count == count else {
            throw bad("metadata key \"tokenizer.ggml.token_type\" must be an array of \(count) integers, one per token")
        }
        return try a.values.map { t in
            switch t {
            case let .i32(x): return Int(x)
            default:
                guard let x = t.unsignedValue, x < 256 else { throw bad("metadata key \"tokenizer.ggml.token_type\" holds \(t.typeName) \(JSONText.serialize(t.json)), not a token type") }
                return Int(x)
            }
        }
    }

    /// A token id key (`tokenizer.ggml.KEY`), checked against the vocabulary's size.
    func tokenID(_ key: String, count: Int, _ c: GGUFLlamaConfig, _ bad: (String) -> FTQError) throws -> Int? {
        guard let v = c.meta["tokenizer.ggml.\(key)"] else { return nil }
        guard let id = v.unsignedValue, id < UInt64(count) else {
            throw bad("metadata key \"tokenizer.ggml.\(key)\" is \(JSONText.serialize(v.json)), not a token id of the vocabulary of \(count)")
        }
        return Int(id)
    }

    /// A bool key (`tokenizer.ggml.KEY`).
    func flag(_ key: String, _ c: GGUFLlamaConfig, _ bad: (String) -> FTQError) throws -> Bool? {
        guard let v = c.meta["tokenizer.ggml.\(key)"] else { return nil }
        guard case let .bool(b) = v else { throw bad("metadata key \"tokenizer.ggml.\(key)\" must be a bool, not \(v.typeName)") }
        return b
    }

    /// The tokenizer.json `pre_tokenizer` of llama.cpp's pre-tokenizer `name` (one of
    /// `preTokenizers`): GPT-2's byte-level split, or Llama 3's pattern then bytes.
    static func preTokenizer(_ name: String) -> JSONValue {
        if name == "llama-bpe" {
            return .object([
                ("type", .string("Sequence")),
                ("pretokenizers", .array([
                    .object([("type", .string("Split")), ("pattern", .object([("Regex", .string(LlamaTokenizer.llama3Pattern))])),
                             ("behavior", .string("Isolated")), ("invert", .bool(false))]),
                    .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)), ("trim_offsets", .bool(true)),
                             ("use_regex", .bool(false))]),
                ])),
            ])
        }
        return .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)), ("trim_offsets", .bool(true)),
                        ("use_regex", .bool(true))])
    }
}
