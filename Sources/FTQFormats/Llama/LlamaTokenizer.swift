import FTQCore

/// The `tokenizer.ggml.*` metadata of a llama.cpp GGUF from a checkpoint's tokenizer files
/// (formats/llama-gguf.md, "Tokenizer"), chosen as llama.cpp's convert_hf_to_gguf chooses:
/// a SentencePiece `tokenizer.model` becomes the `llama` vocabulary (pieces, scores, types);
/// without one, a Llama tokenizer.json that is a SentencePiece-style BPE (`byte_fallback`)
/// becomes the `llama` vocabulary too, and a byte-level BPE tokenizer.json (GPT-2 style, with
/// merges) becomes the `gpt2` vocabulary. Without any, the GGUF says `tokenizer.ggml.model`
/// "none", which llama.cpp loads as `llama.vocab_size` placeholder tokens: it runs on token ids
/// and cannot tokenize text.
public enum LlamaTokenizer {
    /// llama.cpp's token types.
    enum TokenType: Int32 { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

    /// The largest vocabulary converted (tokens are held in memory): far above real ones.
    public static let maxTokens = 1 << 24

    /// Llama 3's pre-tokenizer split pattern (tiktoken's `pat_str`), llama.cpp's `llama-bpe`.
    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// Qwen2's split pattern (single digits), llama.cpp's `qwen2`.
    static let qwen2Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    static func readBytes(_ path: String) throws -> [UInt8]? {
        guard PathKind.of(path) == .regularFile else { return nil }
        let f = try InputFile(path)
        guard f.size <= CompanionFiles.maxBytes else {
            throw FTQError.invalid("input.companion-too-large", file: path, "larger than 64 MiB; ftq reads only small tokenizer files")
        }
        var bytes = [UInt8](repeating: 0, count: f.size)
        try bytes.withUnsafeMutableBytes { try f.read(into: $0, at: 0) }
        return bytes
    }

    static func readJSON(_ path: String) throws -> JSONValue? {
        guard let bytes = try readBytes(path) else { return nil }
        do { return try StrictJSON.parse(bytes) } catch let e as FTQError { throw e.inFile(path) }
    }

    static func readText(_ path: String) throws -> String? {
        guard let bytes = try readBytes(path) else { return nil }
        guard let t = String(validating: bytes, as: UTF8.self) else {
            throw FTQError.invalid("convert.tokenizer", file: path, "not UTF-8 text")
        }
        return t
    }

    /// llama.cpp's pre-tokenizer name for a tokenizer.json `pre_tokenizer`, or nil when it is
    /// not one ftq recognises.
    static func preName(_ pre: JSONValue?) -> String? {
        guard let pre else { return nil }
        if case .string("ByteLevel")? = pre["type"], pre["use_regex"] != .bool(false), pre["add_prefix_space"] != .bool(true) {
            return "gpt-2"
        }
        if case .string("Sequence")? = pre["type"], case let .array(parts)? = pre["pretokenizers"], parts.count == 2,
           case .string("Split")? = parts[0]["type"], case let .string(pattern)? = parts[0]["pattern"]?["Regex"],
           case .string("ByteLevel")? = parts[1]["type"], parts[1]["use_regex"] == .bool(false) {
            if pattern == llama3Pattern { return "llama-bpe" }
            if pattern == qwen2Pattern { return "qwen2" }
        }
        return nil
    }

    /// A short description of a pre-tokenizer for error messages.
    static func describe(_ pre: JSONValue?) -> String {
        guard let pre else { return "none" }
        var s = JSONText.serialize(pre)
        if s.utf8.count > 300 { s = String(s.prefix(300)) + "..." }
        return s
    }

    /// convert_hf_to_gguf's test for added tokens that ought to be control tokens though not
    /// marked special: `<|...|>`, `<｜...｜>`, `<unused...>` and a few names.
    static func looksSpecial(_ t: String) -> Bool {
        if ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(t) { return true }
        if t.hasPrefix("<|") && t.hasSuffix("|>") { return true }
        if t.hasPrefix("<\u{FF5C}") && t.hasSuffix("\u{FF5C}>") { return true }
        return t.hasPrefix("<unused") && t.hasSuffix(">")
    }

    /// The tokenizer metadata of the checkpoint in `directory` for a model of `vocabSize`
    /// tokens. `architecture` is llama.cpp's (`llama`, `qwen2`); nil reads it from config.json.
    public static func metadata(directory: String, vocabSize: Int, pre override: String?, architecture: String? = nil,
                                notice: (@Sendable (String) -> Void)?) throws -> [(String, GGUFValue)] {
        let configPath = joinPath(directory, "config.json")
        guard vocabSize <= maxTokens else {
            throw FTQError.invalid("convert.tokenizer", file: configPath, "vocab_size \(vocabSize) is larger than the \(maxTokens) tokens ftq converts")
        }
        let arch: String
        if let architecture { arch = architecture } else {
            arch = (try? readJSON(configPath))??["model_type"] == .string("qwen2") ? "qwen2" : "llama"
        }
        let tokenizerPath = joinPath(directory, "tokenizer.json")
        let tj = try readJSON(tokenizerPath)
        var m: [(String, GGUFValue)]
        if PathKind.of(joinPath(directory, "tokenizer.model")) == .regularFile {
            m = try sentencePiece(directory: directory, vocabSize: vocabSize, tokenizerJSON: tj, pre: override, notice: notice)
        } else if arch == "llama", let tj, isLlamaHF(tj) {
            m = try llamaHF(directory: directory, tj, vocabSize: vocabSize, pre: override)
        } else if let tj {
            guard let g = try gpt2(directory: directory, tj, vocabSize: vocabSize, pre: override, notice: notice) else {
                return [("tokenizer.ggml.model", .string("none"))]
            }
            m = g
        } else {
            notice?("no tokenizer.json or tokenizer.model: the GGUF has no vocabulary (tokenizer.ggml.model \"none\"); llama.cpp runs it on token ids only")
            return [("tokenizer.ggml.model", .string("none"))]
        }
        if arch == "llama" {
            // convert_hf_to_gguf's additions for its llama architecture.
            if case let .bool(b)? = try readJSON(joinPath(directory, "tokenizer_config.json"))?["add_prefix_space"] {
                m.append(("tokenizer.ggml.add_space_prefix", .bool(b)))
            }
            if vocabSize == 49152 {
                // Granite and SmolLM (49152 tokens): no BOS, whatever the tokenizer says.
                if let i = m.firstIndex(where: { $0.0 == "tokenizer.ggml.add_bos_token" }) {
                    m[i].1 = .bool(false)
                } else {
                    m.append(("tokenizer.ggml.add_bos_token", .bool(false)))
                }
            }
        }
        return m
    }

    // MARK: SentencePiece tokenizer.model

    static func sentencePiece(directory: String, vocabSize: Int, tokenizerJSON: JSONValue?, pre: String?,
                              notice: (@Sendable (String) -> Void)?) throws -> [(String, GGUFValue)] {
        let path = joinPath(directory, "tokenizer.model")
        let spm = try SentencePieceModel.read(path)
        if spm.modelType != .bpe {
            notice?("tokenizer.model is a SentencePiece \(spm.modelType) model; llama.cpp's llama tokenizer merges pieces by score as for BPE, so its tokenization may differ from sentencepiece's")
        }
        if !spm.addDummyPrefix {
            notice?("tokenizer.model does not add a dummy prefix; llama.cpp's llama tokenizer adds a leading space unless tokenizer.ggml.add_space_prefix says otherwise")
        }
        var tokens = (0..<vocabSize).map { "[PAD\($0)]" }
        var scores = [Float](repeating: -10000, count: vocabSize)
        var types = [TokenType](repeating: .unused, count: vocabSize)
        for (i, p) in spm.pieces.enumerated() {
            guard i < vocabSize else {
                notice?("tokenizer.model has \(spm.pieces.count) pieces; those from id \(vocabSize) on are beyond the model's vocab_size and left out")
                break
            }
            tokens[i] = p.text
            scores[i] = p.score
            switch p.type {
            case .unknown: types[i] = .unknown
            case .control: types[i] = .control
            case .unused: types[i] = .unused
            case .byte: types[i] = .byte
            case .normal, .userDefined: types[i] = .normal
            }
        }
        // added_tokens.json: {"token": id} beyond the pieces, user-defined.
        let addedPath = joinPath(directory, "added_tokens.json")
        if let added = try readJSON(addedPath) {
            guard case let .object(members) = added else {
                throw FTQError.invalid("convert.tokenizer", file: addedPath, "not an object of token: id")
            }
            for (token, v) in members {
                guard let id = v.nonNegativeInteger else {
                    throw FTQError.invalid("convert.tokenizer", file: addedPath, "token \(JSONText.quote(token)) has id \(JSONText.serialize(v)), not a non-negative integer")
                }
                guard id < UInt64(vocabSize) else { notice?("added_tokens.json: \(JSONText.quote(token)) (id \(id)) is beyond vocab_size \(vocabSize), left out"); continue }
                tokens[Int(id)] = token
                scores[Int(id)] = -1000
                types[Int(id)] = .userDefined
            }
        }
        // tokenizer_config.json's added_tokens_decoder: {"id": {"content": ..., "special": ...}}.
        let tcPath = joinPath(directory, "tokenizer_config.json")
        if case let .object(decoder)? = try readJSON(tcPath)?["added_tokens_decoder"] {
            for (key, entry) in decoder {
                guard let id = JSONValue.number(key).nonNegativeInteger, case let .string(content)? = entry["content"] else {
                    throw FTQError.invalid("convert.tokenizer", file: tcPath, "added_tokens_decoder entry \(JSONText.quote(key)) needs a non-negative integer id and a \"content\" string")
                }
                guard id < UInt64(vocabSize) else { notice?("added_tokens_decoder: \(JSONText.quote(content)) (id \(id)) is beyond vocab_size \(vocabSize), left out"); continue }
                let i = Int(id)
                if isTruthy(entry["special"]) || looksSpecial(content) {
                    types[i] = .control
                    tokens[i] = content
                } else {
                    // llama.cpp expects user-defined tokens pre-normalized: "▁" is a space.
                    types[i] = .userDefined
                    tokens[i] = content.replacingAll("\u{2581}", with: " ")
                }
                scores[i] = -1000
            }
        }
        var m: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("llama")),
            ("tokenizer.ggml.pre", .string(pre ?? "default")),
            ("tokenizer.ggml.tokens", .array(GGUFArray(.string, tokens.map { .string($0) }))),
            ("tokenizer.ggml.scores", .array(GGUFArray(.f32, scores.map { .f32($0) }))),
            ("tokenizer.ggml.token_type", .array(GGUFArray(.i32, types.map { .i32($0.rawValue) }))),
        ]
        m += try LlamaSpecialTokens.read(directory: directory, tokenizerJSON: tokenizerJSON, count: vocabSize).metadata()
        return m
    }

    /// Python's truthiness of a JSON value (what convert_hf_to_gguf tests with `if x`).
    static func isTruthy(_ v: JSONValue?) -> Bool {
        switch v {
        case let .bool(b)?: return b
        case let .string(s)?: return !s.isEmpty
        case let .number(n)?: return Double(n) != 0
        case let .array(a)?: return !a.isEmpty
        case let .object(o)?: return !o.isEmpty
        case .null?, nil: return false
        }
    }

    // MARK: SentencePiece-style tokenizer.json (BPE with byte fallback)

    /// gguf-py's LlamaHfVocab test: a BPE model with `byte_fallback` and a `Sequence` decoder.
    static func isLlamaHF(_ tj: JSONValue) -> Bool {
        guard case .string("BPE")? = tj["model"]?["type"], isTruthy(tj["model"]?["byte_fallback"]) else { return false }
        if case .string("Sequence")? = tj["decoder"]?["type"] { return true }
        return false
    }

    static func llamaHF(directory: String, _ tj: JSONValue, vocabSize: Int, pre: String?) throws -> [(String, GGUFValue)] {
        let path = joinPath(directory, "tokenizer.json")
        func bad(_ why: String) -> FTQError { FTQError.invalid("convert.tokenizer", file: path, why) }
        guard case let .object(vocab)? = tj["model"]?["vocab"] else { throw bad("model.vocab is not an object") }
        let base = vocab.count
        guard base <= maxTokens else { throw bad("\(base) tokens, more than the \(maxTokens) ftq converts") }
        // Tokens by id: the vocabulary, then the added tokens (which win, as in transformers).
        var byId = [String?](repeating: nil, count: base)
        var idOf: [String: Int] = [:]
        for (token, v) in vocab {
            guard let id = v.nonNegativeInteger, id < UInt64(base) else {
                throw bad("token \(JSONText.quote(token)) has id \(JSONText.serialize(v)); the \(base) vocabulary ids must be 0..<\(base)")
            }
            guard byId[Int(id)] == nil else { throw bad("two tokens have id \(id)") }
            byId[Int(id)] = token
            idOf[token] = Int(id)
        }
        var beyond: [(Int, String)] = []
        if case let .array(list)? = tj["added_tokens"] {
            for a in list {
                guard case let .string(content)? = a["content"], let id = a["id"]?.nonNegativeInteger, id < UInt64(maxTokens) else {
                    throw bad("an added token needs a \"content\" string and a non-negative integer \"id\"")
                }
                if Int(id) < base { byId[Int(id)] = content } else { beyond.append((Int(id), content)) }
                idOf[content] = Int(id)
            }
        }
        beyond.sort { $0.0 < $1.0 }
        for (k, b) in beyond.enumerated() where b.0 != base + k {
            throw bad("added token \(JSONText.quote(b.1)) has id \(b.0); added tokens beyond the \(base) vocabulary ids must follow it without gaps")
        }
        let total = base + beyond.count
        guard total == vocabSize else {
            throw bad("\(total) tokens (\(base) in the vocabulary, \(beyond.count) added), but config.json's vocab_size is \(vocabSize); llama.cpp needs them equal for this vocabulary")
        }
        // The special tokens are those tokenizer_config.json names (transformers' all_special_tokens).
        var specialIds = Set<Int>()
        var specialNames = Set<String>()
        if let tc = try readJSON(joinPath(directory, "tokenizer_config.json")) {
            func name(_ v: JSONValue?) -> String? {
                if case let .string(s)? = v { return s }
                if case let .string(s)? = v?["content"] { return s }
                return nil
            }
            var names: [String] = []
            for kind in ["bos", "eos", "unk", "sep", "pad", "cls", "mask"] { if let n = name(tc["\(kind)_token"]) { names.append(n) } }
            for key in ["additional_special_tokens", "extra_special_tokens"] {
                if case let .array(list)? = tc[key] { names += list.compactMap { name($0) } }
            }
            for n in names { if let id = idOf[n] { specialIds.insert(id); specialNames.insert(n) } }
        }
        var tokens: [String] = [], types: [TokenType] = []
        tokens.reserveCapacity(total)
        types.reserveCapacity(total)
        for id in 0..<base {
            guard let t = byId[id] else { throw bad("no token has id \(id)") }
            tokens.append(t)
            types.append(isByteToken(t) ? .byte : specialIds.contains(id) ? .control : .normal)
        }
        for (_, t) in beyond {
            tokens.append(t)
            types.append(specialNames.contains(t) ? .control : .userDefined)
        }
        var m: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("llama")),
            ("tokenizer.ggml.pre", .string(pre ?? "default")),
            ("tokenizer.ggml.tokens", .array(GGUFArray(.string, tokens.map { .string($0) }))),
            // gguf-py's LlamaHfVocab gives every token the score -1000.
            ("tokenizer.ggml.scores", .array(GGUFArray(.f32, [GGUFValue](repeating: .f32(-1000), count: total)))),
            ("tokenizer.ggml.token_type", .array(GGUFArray(.i32, types.map { .i32($0.rawValue) }))),
        ]
        m += try LlamaSpecialTokens.read(directory: directory, tokenizerJSON: tj, count: total).metadata()
        return m
    }

    /// `<0xXX>`: a byte-fallback token.
    static func isByteToken(_ t: String) -> Bool {
        let u = Array(t.utf8)
        func hex(_ c: UInt8) -> Bool { (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66) }
        return u.count == 6 && u[0] == 0x3C && u[1] == 0x30 && u[2] == 0x78 && hex(u[3]) && hex(u[4]) && u[5] == 0x3E
    }

    // MARK: byte-level BPE tokenizer.json

    /// The `gpt2` vocabulary, or nil (with a note) when tokenizer.json is not a BPE model.
    static func gpt2(directory: String, _ tj: JSONValue, vocabSize: Int, pre override: String?,
                     notice: (@Sendable (String) -> Void)?) throws -> [(String, GGUFValue)]? {
        let path = joinPath(directory, "tokenizer.json")
        func bad(_ why: String) -> FTQError { FTQError.invalid("convert.tokenizer", file: path, why) }
        guard let model = tj["model"], case .string("BPE")? = model["type"],
              case let .object(vocab)? = model["vocab"], case let .array(mergeList)? = model["merges"] else {
            notice?("tokenizer.json is not a BPE tokenizer ftq converts yet: the GGUF has no vocabulary (tokenizer.ggml.model \"none\")")
            return nil
        }
        guard let pre = override ?? preName(tj["pre_tokenizer"]) else {
            throw bad("the pre-tokenizer \(describe(tj["pre_tokenizer"])) is not one ftq recognises (GPT-2 byte-level: gpt-2, Llama 3's split pattern: llama-bpe, Qwen2's: qwen2); llama.cpp refuses a BPE vocabulary without its name: give it with --tokenizer-pre NAME")
        }
        // Tokens by id, padded to the model's vocabulary as convert_hf_to_gguf does.
        var tokens = [String?](repeating: nil, count: vocabSize)
        var types = [TokenType](repeating: .unused, count: vocabSize)
        func place(_ token: String, _ idValue: JSONValue?, _ type: TokenType) throws {
            guard let id = idValue?.nonNegativeInteger, id < UInt64(vocabSize) else {
                throw bad("token \(JSONText.quote(token)) has id \(idValue.map { JSONText.serialize($0) } ?? "none"), outside the model's vocabulary of \(vocabSize)")
            }
            tokens[Int(id)] = token
            types[Int(id)] = type
        }
        for (token, id) in vocab { try place(token, id, .normal) }
        if case let .array(list)? = tj["added_tokens"] {
            for a in list {
                guard case let .string(content)? = a["content"] else { throw bad("an added token has no content") }
                if a["special"] == .bool(true) || looksSpecial(content) {
                    try place(content, a["id"], .control)
                } else {
                    // llama.cpp expects user-defined tokens pre-normalized: "▁" is a space.
                    try place(content.replacingAll("\u{2581}", with: " "), a["id"], .userDefined)
                }
            }
        }
        let tokenValues: [GGUFValue] = tokens.enumerated().map { .string($0.element ?? "[PAD\($0.offset)]") }
        // Merges "a b"; in the two-string form a space inside a part is written as U+0120, as
        // gguf-py does.
        let merges: [GGUFValue] = try mergeList.map { m in
            switch m {
            case let .string(s): return .string(s)
            case let .array(p) where p.count == 2:
                guard case let .string(a) = p[0], case let .string(b) = p[1] else { throw bad("a merge is not two strings") }
                return .string(a.replacingAll(" ", with: "\u{0120}") + " " + b.replacingAll(" ", with: "\u{0120}"))
            default: throw bad("a merge is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }
        var m: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string(pre)),
            ("tokenizer.ggml.tokens", .array(GGUFArray(.string, tokenValues))),
            ("tokenizer.ggml.token_type", .array(GGUFArray(.i32, types.map { .i32($0.rawValue) }))),
        ]
        if !merges.isEmpty { m.append(("tokenizer.ggml.merges", .array(GGUFArray(.string, merges)))) }
        m += try LlamaSpecialTokens.read(directory: directory, tokenizerJSON: tj, count: vocabSize).metadata()
        return m
    }
}

extension String {
    /// Every occurrence of `target` (compared as Unicode scalars) replaced.
    func replacingAll(_ target: String, with replacement: String) -> String {
        let t = Array(target.unicodeScalars)
        guard !t.isEmpty else { return self }
        let s = Array(unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < s.count {
            if i + t.count <= s.count && Array(s[i..<(i + t.count)]) == t {
                out.append(contentsOf: replacement.unicodeScalars)
                i += t.count
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return String(out)
    }
}
