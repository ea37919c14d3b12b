import FTQCore

/// The special-token metadata of a llama.cpp vocabulary (formats/llama-gguf.md, "Special
/// tokens"), read as gguf-py's `SpecialVocab` reads it: ids of the tokens tokenizer_config.json
/// names, looked up among tokenizer.json's added tokens, then config.json's `*_token_id`; the
/// `add_*_token` flags from tokenizer.json's post-processor and tokenizer_config.json; the chat
/// template.
struct LlamaSpecialTokens {
    /// Token kinds in the order they are looked up, and their GGUF keys (nil: llama.cpp has none).
    static let keys: [String: String] = [
        "bos": "tokenizer.ggml.bos_token_id", "eos": "tokenizer.ggml.eos_token_id",
        "unk": "tokenizer.ggml.unknown_token_id", "sep": "tokenizer.ggml.seperator_token_id",
        "pad": "tokenizer.ggml.padding_token_id", "mask": "tokenizer.ggml.mask_token_id",
        "eot": "tokenizer.ggml.eot_token_id", "eom": "tokenizer.ggml.eom_token_id",
    ]
    static let addKeys: [String: String] = [
        "bos": "tokenizer.ggml.add_bos_token", "eos": "tokenizer.ggml.add_eos_token", "sep": "tokenizer.ggml.add_sep_token",
    ]

    var kinds = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"]
    /// Ids by kind, in the order found (the first found wins).
    var ids: [(String, Int)] = []
    var add: [(String, Bool)] = []
    var chatTemplate: String? = nil

    /// Reads the special tokens of `directory` for a vocabulary of `count` tokens (ids at or
    /// beyond it are ignored, as gguf-py does). `tokenizerJSON` is tokenizer.json, when there is one.
    static func read(directory: String, tokenizerJSON tj: JSONValue?, count: Int) throws -> LlamaSpecialTokens {
        var s = LlamaSpecialTokens()
        let tcPath = joinPath(directory, "tokenizer_config.json")
        var tc = try LlamaTokenizer.readJSON(tcPath)
        // gguf-py treats a missing, empty or non-object tokenizer_config.json alike.
        if case let .object(members)? = tc, !members.isEmpty {} else { tc = nil }
        let added: [JSONValue]
        if case let .array(a)? = tj?["added_tokens"] { added = a } else { added = [] }
        // Overrides of tokenizer_config.json entries, as gguf-py edits its copy.
        var tcOverride: [String: String] = [:]
        func tcString(_ key: String) -> String? {
            if let o = tcOverride[key] { return o }
            guard let v = tc?[key] else { return nil }
            if case let .string(x) = v { return x }
            return nil
        }
        /// Python's truthiness of a tokenizer_config entry (a non-empty string or object).
        func tcTruthy(_ key: String) -> JSONValue? {
            if let o = tcOverride[key] { return o.isEmpty ? nil : .string(o) }
            switch tc?[key] {
            case let .string(x)? where !x.isEmpty: return .string(x)
            case let .object(m)? where !m.isEmpty: return tc?[key]
            case let .array(a)? where !a.isEmpty: return tc?[key]
            case let .bool(b)? where b: return .bool(b)
            case let .number(n)? where Double(n) != 0: return .number(n)
            default: return nil
            }
        }
        func setAdd(_ kind: String, _ value: Bool) {
            if let i = s.add.firstIndex(where: { $0.0 == kind }) { s.add[i].1 = value } else { s.add.append((kind, value)) }
        }
        if let tj {
            var bos = tcTruthy("bos_token"), cls = tcTruthy("cls_token"), eos = tcTruthy("eos_token"), sep = tcTruthy("sep_token")
            if bos == nil, let cls, case let .string(c) = cls, tc != nil { tcOverride["bos_token"] = c; bos = cls }
            if eos == nil, let sep, case let .string(c) = sep, tc != nil { tcOverride["eos_token"] = c; eos = sep }
            var processors: [JSONValue] = []
            if let pp = tj["post_processor"], pp != .null {
                if case let .array(list)? = pp["processors"] { processors = list } else { processors = [pp] }
            }
            func specialId(_ item: JSONValue?) -> String? {
                if case let .string(x)? = item?["SpecialToken"]?["id"], !x.isEmpty { return x }
                return nil
            }
            for p in processors {
                if case .string("RobertaProcessing")? = p["type"] {
                    setAdd("bos", true); setAdd("eos", true); setAdd("sep", true)
                    if cls == nil, tc != nil, case let .array(c)? = p["cls"], case let .string(x)? = c.first { tcOverride["cls_token"] = x; cls = .string(x) }
                    if sep == nil, tc != nil, case let .array(c)? = p["sep"], case let .string(x)? = c.first { tcOverride["sep_token"] = x; sep = .string(x) }
                    continue
                }
                guard case .string("TemplateProcessing")? = p["type"] else { continue }
                var single: [JSONValue] = [], pair: [JSONValue] = []
                if case let .array(a)? = p["single"] { single = a }
                if case let .array(a)? = p["pair"] { pair = a }
                var first: String? = nil, last: String? = nil
                if single.count > 1 {
                    if let f = specialId(single[0]) {
                        first = f
                        if tc == nil { bos = .string(f) }
                        setAdd("bos", f == bos?.stringValue || f == cls?.stringValue)
                    }
                    if let l = specialId(single[single.count - 1]) {
                        last = l
                        if tc == nil {
                            eos = .string(l)
                        } else if l != eos?.stringValue {
                            if !s.kinds.contains("eot") {
                                s.kinds.append("eot")
                                if let e = eos?.stringValue { tcOverride["eot_token"] = e }
                            } else if !s.kinds.contains("eom") {
                                s.kinds.append("eom")
                                if let e = eos?.stringValue { tcOverride["eom_token"] = e }
                            }
                            tcOverride["eos_token"] = l
                            eos = .string(l)
                        }
                        setAdd("eos", l == eos?.stringValue)
                    }
                }
                if !pair.isEmpty {
                    let start = first != nil && specialId(pair[0]) == first ? 1 : 0
                    let stop = last != nil && specialId(pair[pair.count - 1]) == last ? pair.count - 1 : pair.count
                    var mid = start < stop ? Array(pair[start..<stop]) : []
                    if !mid.isEmpty {
                        let a = mid[0]["Sequence"]?["id"]?.stringValue, b = mid[mid.count - 1]["Sequence"]?["id"]?.stringValue
                        if a == "A", b == "B" {
                            mid = mid.count > 2 ? Array(mid[1..<(mid.count - 1)]) : []
                            if !mid.isEmpty {
                                var addSep = false
                                let sepName = sep?.stringValue, eosName = eos?.stringValue
                                if let e = specialId(mid[0]), e == sepName || e == eosName, last == nil { addSep = true }
                                if mid.count == 2, let e = specialId(mid[1]), e == sepName || e == eosName { addSep = true }
                                setAdd("sep", addSep)
                                if addSep, sep == nil, tc != nil, let e = eosName { tcOverride["sep_token"] = e }
                            }
                        }
                    }
                }
            }
        }
        guard tc != nil else {
            try s.fromConfig(directory: directory, count: count)
            return s
        }
        // The chat template: tokenizer_config.json's, else chat_template.jinja or .json.
        let jinja = joinPath(directory, "chat_template.jinja"), jsonPath = joinPath(directory, "chat_template.json")
        var alt: String? = nil
        if PathKind.of(jinja) == .regularFile {
            alt = try LlamaTokenizer.readText(jinja)
        } else if PathKind.of(jsonPath) == .regularFile, case let .string(t)? = try LlamaTokenizer.readJSON(jsonPath)?["chat_template"] {
            alt = t
        }
        if let v = tc?["chat_template"] {
            if case let .string(t) = v { s.chatTemplate = t } else if v != .null {
                throw FTQError.invalid("convert.tokenizer", file: tcPath, "\"chat_template\" is \(v.kindName), not a string (ftq writes one template)")
            }
        } else {
            s.chatTemplate = alt
        }
        for kind in s.kinds {
            if case let .bool(b)? = tc?["add_\(kind)_token"] { setAdd(kind, b) }
            var content: String? = tcString("\(kind)_token")
            if content == nil, case let .string(c)? = tc?["\(kind)_token"]?["content"] { content = c }
            guard let content else { continue }
            let match = added.first(where: { $0["content"]?.stringValue == content })
            try s.set(kind, match?["id"], count: count, file: joinPath(directory, "tokenizer.json"))
        }
        try s.fromConfig(directory: directory, count: count)
        return s
    }

    /// config.json's `*_token_id` integers (at the top level, or in `text_config`).
    mutating func fromConfig(directory: String, count: Int) throws {
        let path = joinPath(directory, "config.json")
        guard let config = try LlamaTokenizer.readJSON(path) else { return }
        for kind in kinds {
            var v = config["\(kind)_token_id"]
            if v == nil || v == .null { v = config["text_config"]?["\(kind)_token_id"] }
            try set(kind, v, count: count, file: path)
        }
    }

    /// gguf-py's `_set_special_token`: integers only; negative is an error; out of range or
    /// already set is ignored.
    mutating func set(_ kind: String, _ v: JSONValue?, count: Int, file: String) throws {
        guard case let .number(text)? = v else { return }
        if text.hasPrefix("-"), Int(text) != nil {
            throw FTQError.invalid("convert.tokenizer", file: file, "\(kind) token id \(text) is negative")
        }
        guard let id = v?.nonNegativeInteger, id < UInt64(count) else { return }
        if ids.contains(where: { $0.0 == kind }) { return }
        ids.append((kind, Int(id)))
    }

    /// The GGUF key-values, in gguf-py's order: ids, add flags, chat template.
    func metadata() -> [(String, GGUFValue)] {
        var m: [(String, GGUFValue)] = []
        for (kind, id) in ids { if let k = Self.keys[kind] { m.append((k, .u32(UInt32(id)))) } }
        for (kind, b) in add { if let k = Self.addKeys[kind] { m.append((k, .bool(b))) } }
        if let t = chatTemplate { m.append(("tokenizer.chat_template", .string(t))) }
        return m
    }
}

extension JSONValue {
    var stringValue: String? {
        if case let .string(s) = self { return s }
        return nil
    }
}
