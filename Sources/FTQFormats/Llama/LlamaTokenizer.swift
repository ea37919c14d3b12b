import FTQCore

/// The `tokenizer.ggml.*` metadata of a Llama GGUF from a checkpoint's tokenizer files
/// (formats/llama-gguf.md, "Tokenizer"): a byte-level BPE tokenizer.json (GPT-2 style, with
/// merges) becomes llama.cpp's `gpt2` vocabulary; without one, or for a SentencePiece-style
/// vocabulary (not converted yet), the GGUF says `tokenizer.ggml.model` "none", which llama.cpp
/// loads as `llama.vocab_size` placeholder tokens: it runs on token ids and cannot tokenize text.
public enum LlamaTokenizer {
    /// llama.cpp's token types.
    enum TokenType: Int32 { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

    /// Llama 3's pre-tokenizer split pattern (tiktoken's `pat_str`), llama.cpp's `llama-bpe`.
    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    static func readJSON(_ path: String) throws -> JSONValue? {
        guard PathKind.of(path) == .regularFile else { return nil }
        let f = try InputFile(path)
        guard f.size <= CompanionFiles.maxBytes else {
            throw FTQError.invalid("input.companion-too-large", file: path, "larger than 64 MiB; ftq reads only small tokenizer files")
        }
        var bytes = [UInt8](repeating: 0, count: f.size)
        try bytes.withUnsafeMutableBytes { try f.read(into: $0, at: 0) }
        do { return try StrictJSON.parse(bytes) } catch let e as FTQError { throw e.inFile(path) }
    }

    /// llama.cpp's pre-tokenizer name for a tokenizer.json `pre_tokenizer`, or nil when it is
    /// not one ftq recognises.
    static func preName(_ pre: JSONValue?) -> String? {
        guard let pre else { return nil }
        if case .string("ByteLevel")? = pre["type"], pre["use_regex"] != .bool(false), pre["add_prefix_space"] != .bool(true) {
            return "gpt-2"
        }
        if case .string("Sequence")? = pre["type"], case let .array(parts)? = pre["pretokenizers"], parts.count == 2,
           case .string("Split")? = parts[0]["type"], case .string(llama3Pattern)? = parts[0]["pattern"]?["Regex"],
           case .string("ByteLevel")? = parts[1]["type"], parts[1]["use_regex"] == .bool(false) {
            return "llama-bpe"
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

    static func metadata(directory: String, vocabSize: Int, pre override: String?,
                         notice: (@Sendable (String) -> Void)?) throws -> [(String, GGUFValue)] {
        let none: [(String, GGUFValue)] = [("tokenizer.ggml.model", .string("none"))]
        let path = joinPath(directory, "tokenizer.json")
        guard let tj = try readJSON(path) else {
            let sp = PathKind.of(joinPath(directory, "tokenizer.model")) == .regularFile
            notice?(sp ? "tokenizer.model (SentencePiece) is not converted yet: the GGUF has no vocabulary (tokenizer.ggml.model \"none\"); llama.cpp runs it on token ids only"
                       : "no tokenizer.json: the GGUF has no vocabulary (tokenizer.ggml.model \"none\"); llama.cpp runs it on token ids only")
            return none
        }
        func bad(_ why: String) -> FTQError { FTQError.invalid("convert.tokenizer", file: path, why) }
        guard let model = tj["model"], case .string("BPE")? = model["type"],
              case let .object(vocab)? = model["vocab"], case let .array(mergeList)? = model["merges"] else {
            notice?("tokenizer.json is not a BPE tokenizer ftq converts yet: the GGUF has no vocabulary (tokenizer.ggml.model \"none\")")
            return none
        }
        if model["byte_fallback"] == .bool(true) {
            notice?("tokenizer.json is a SentencePiece-style BPE (byte_fallback), not converted yet: the GGUF has no vocabulary (tokenizer.ggml.model \"none\")")
            return none
        }
        guard let pre = override ?? preName(tj["pre_tokenizer"]) else {
            throw bad("the pre-tokenizer \(describe(tj["pre_tokenizer"])) is not one ftq recognises (GPT-2 byte-level: gpt-2, Llama 3's split pattern: llama-bpe); llama.cpp refuses a BPE vocabulary without its name: give it with --tokenizer-pre NAME")
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
        var added: [String: Int] = [:]
        if case let .array(list)? = tj["added_tokens"] {
            for a in list {
                guard case let .string(content)? = a["content"] else { throw bad("an added token has no content") }
                try place(content, a["id"], a["special"] == .bool(true) ? .control : .userDefined)
                added[content] = Int(a["id"]!.nonNegativeInteger!)
            }
        }
        let tokenValues: [GGUFValue] = tokens.enumerated().map { .string($0.element ?? "[PAD\($0.offset)]") }
        let merges: [GGUFValue] = try mergeList.map { m in
            switch m {
            case let .string(s): return .string(s)
            case let .array(p) where p.count == 2:
                guard case let .string(a) = p[0], case let .string(b) = p[1] else { throw bad("a merge is not two strings") }
                return .string(a + " " + b)
            default: throw bad("a merge is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }
        var m: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string(pre)),
            ("tokenizer.ggml.tokens", .array(GGUFArray(.string, tokenValues))),
            ("tokenizer.ggml.token_type", .array(GGUFArray(.i32, types.map { .i32($0.rawValue) }))),
            ("tokenizer.ggml.merges", .array(GGUFArray(.string, merges))),
        ]
        // Special tokens: tokenizer_config.json's (by content), else config.json's ids.
        let tc = try readJSON(joinPath(directory, "tokenizer_config.json"))
        let config = try readJSON(joinPath(directory, "config.json"))
        for (kind, key) in [("bos", "bos_token_id"), ("eos", "eos_token_id"), ("unk", "unknown_token_id"),
                            ("sep", "seperator_token_id"), ("pad", "padding_token_id")] {
            var id: Int? = nil
            var content = tc?["\(kind)_token"]
            if case .object? = content { content = content?["content"] }
            if case let .string(s)? = content {
                id = added[s] ?? vocab.first(where: { $0.0 == s })?.1.nonNegativeInteger.map { Int($0) }
            }
            if id == nil, let v = config?["\(kind)_token_id"]?.nonNegativeInteger { id = Int(v) }
            if let id, id < vocabSize { m.append(("tokenizer.ggml.\(key)", .u32(UInt32(id)))) }
        }
        for flag in ["add_bos_token", "add_eos_token"] {
            if case let .bool(b)? = tc?[flag] { m.append(("tokenizer.ggml.\(flag)", .bool(b))) }
        }
        // The chat template, as data: tokenizer_config.json's, or chat_template.jinja.
        if case let .string(t)? = tc?["chat_template"] {
            m.append(("tokenizer.chat_template", .string(t)))
        } else if PathKind.of(joinPath(directory, "chat_template.jinja")) == .regularFile {
            let f = try InputFile(joinPath(directory, "chat_template.jinja"))
            guard f.size <= CompanionFiles.maxBytes else { throw bad("chat_template.jinja is larger than 64 MiB") }
            var bytes = [UInt8](repeating: 0, count: f.size)
            try bytes.withUnsafeMutableBytes { try f.read(into: $0, at: 0) }
            guard let t = String(validating: bytes, as: UTF8.self) else { throw bad("chat_template.jinja is not UTF-8") }
            m.append(("tokenizer.chat_template", .string(t)))
        }
        return m
    }
}
