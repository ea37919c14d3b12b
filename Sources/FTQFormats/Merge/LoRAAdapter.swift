import FTQCore

/// A PEFT LoRA adapter: `adapter_config.json` and `adapter_model.safetensors` in a directory
/// (formats/lora-merge.md, "Adapters").
public struct LoRAAdapter {
    /// One adapted module: its lora_A [r, in] and lora_B [out, r] tensors and its scaling.
    public struct Module: Sendable {
        /// The module path in the base model (`model.layers.0.self_attn.q_proj`).
        public var name: String
        public var a: TensorEntry
        public var b: TensorEntry
        public var rank: Int
        /// alpha / r, or alpha / sqrt(r) with rsLoRA (float64, as PEFT computes it).
        public var scaling: Double
        /// DoRA's `lora_magnitude_vector` [out] (adapters with `use_dora`), else nil.
        public var magnitude: TensorEntry? = nil
    }

    public let path: String
    public let model: Model
    public let configPath: String
    public let fanInFanOut: Bool
    public let modules: [Module]
    /// `modules_to_save`: whole tensors of the adapter that replace the base's tensors of the
    /// same name (base tensor name, adapter tensor).
    public let replacements: [(name: String, tensor: TensorEntry)]
    /// `use_rslora` of the config.
    public let useRSLoRA: Bool
    /// `use_dora` of the config: every module has a magnitude vector.
    public let useDoRA: Bool
    /// The largest rank the config allows: max(r, every rank_pattern value). PEFT sizes a
    /// combined adapter with it.
    public let maxRank: Int
    /// A llama.cpp GGUF LoRA adapter: module names are GGUF tensor names (without `.weight`),
    /// and q/k rows are already in llama.cpp's order.
    public let isGGUF: Bool

    static let prefix = "base_model.model."
    /// The largest LoRA rank ftq accepts (configs come from the internet; real ranks are far
    /// smaller).
    public static let rankLimit = Limits.loraRank

    public init(directory: String) throws {
        switch PathKind.of(directory) {
        case .missing: throw FTQError.io("io.not-found", file: directory, "no such file or directory")
        case let .inaccessible(reason): throw FTQError.io("io.open", file: directory, "cannot open: \(reason)")
        case .directory: break
        default:
            throw FTQError.invalid("merge.adapter-config", file: directory,
                "not a PEFT adapter: expected a directory holding adapter_config.json (or a llama.cpp .gguf adapter)")
        }
        let configPath = joinPath(directory, "adapter_config.json")
        guard PathKind.of(configPath) == .regularFile else {
            throw FTQError.invalid("merge.adapter-config", file: directory, "not a PEFT adapter: adapter_config.json is missing")
        }
        let f = try InputFile(configPath)
        guard f.size <= Limits.adapterConfigBytes else { throw FTQError.invalid("merge.adapter-config", file: configPath, "larger than 1 MiB") }
        let members = try CompanionFiles.parseConfig(try f.read(at: 0, count: f.size), path: configPath)
        func value(_ k: String) -> JSONValue? { members.first { $0.0 == k }?.1 }
        func fail(_ m: String) -> FTQError { FTQError.invalid("merge.adapter-config", file: configPath, m) }
        guard case let .string(type)? = value("peft_type") else { throw fail("\"peft_type\" is missing") }
        guard type == "LORA" else { throw fail("peft_type \"\(type)\" is not supported (ftq merges LORA adapters)") }
        func number(_ v: JSONValue?) -> Double? { if case let .number(s)? = v { return Double(s) }; return nil }
        func bool(_ k: String) throws -> Bool {
            switch value(k) {
            case nil, .null?: return false
            case let .bool(b)?: return b
            default: throw fail("\"\(k)\" must be true or false")
            }
        }
        guard let r = number(value("r")), r >= 1, r == r.rounded(), r <= Double(Self.rankLimit) else {
            throw fail("\"r\" must be an integer from 1 to \(Self.rankLimit)")
        }
        guard let alpha = number(value("lora_alpha")), alpha.isFinite else { throw fail("\"lora_alpha\" must be a number") }
        let rslora = try bool("use_rslora")
        let fanInFanOut = try bool("fan_in_fan_out")
        let dora = try bool("use_dora")
        var saved: [String] = []
        switch value("modules_to_save") {
        case nil, .null?: break
        case let .array(m)?:
            saved = try m.map { v in
                guard case let .string(s) = v else { throw fail("\"modules_to_save\" must be a list of module names") }
                return s
            }
        default: throw fail("\"modules_to_save\" must be a list of module names")
        }
        func patterns(_ k: String) throws -> [(String, Double)] {
            switch value(k) {
            case nil, .null?: return []
            case let .object(o)?:
                return try o.map { key, v in
                    guard let n = number(v), n.isFinite else { throw fail("\"\(k)\".\(key) must be a number") }
                    return (key, n)
                }
            default: throw fail("\"\(k)\" must be an object")
            }
        }
        let rankPattern = try patterns("rank_pattern"), alphaPattern = try patterns("alpha_pattern")
        for (k, v) in rankPattern where !(v >= 1 && v == v.rounded() && v <= Double(Self.rankLimit)) {
            throw fail("rank_pattern.\(k) must be an integer from 1 to \(Self.rankLimit)")
        }

        let weights = joinPath(directory, "adapter_model.safetensors")
        guard PathKind.of(weights) == .regularFile else {
            throw FTQError.invalid("merge.adapter", file: directory, "adapter_model.safetensors is missing (only safetensors adapters are read)")
        }
        let model = try SafetensorsFile.open(weights)
        var pairs: [String: (a: TensorEntry?, b: TensorEntry?)] = [:]
        var order: [String] = []
        var replacements: [(name: String, tensor: TensorEntry)] = []
        var magnitudes: [String: TensorEntry] = [:]
        for t in model.tensors {
            let name = t.name
            // DoRA: PEFT saves each module's magnitude as `<MODULE>.lora_magnitude_vector`.
            if name.hasBytePrefix(Self.prefix), name.hasByteSuffix(".lora_magnitude_vector") {
                guard dora else {
                    throw fail("the adapter holds DoRA magnitudes (\"\(name)\") but \"use_dora\" is not true")
                }
                guard let d = t.type.plainDType, d.isConvertibleFloat, t.shape.count == 1 else {
                    throw FTQError.invalid("merge.adapter", file: weights, "tensor \"\(name)\" must be a 1-D floating-point tensor")
                }
                magnitudes[String(name.dropFirst(Self.prefix.count).dropLast(".lora_magnitude_vector".count))] = t
                continue
            }
            var part: String? = nil
            for s in [".lora_A.weight", ".lora_B.weight"] where name.hasByteSuffix(s) { part = s }
            guard let part, name.hasBytePrefix(Self.prefix) else {
                // A whole tensor of a module listed in modules_to_save: PEFT's trained copy.
                let base = String(name.dropFirst(Self.prefix.count))
                let module = base.split(separator: ".").dropLast().joined(separator: ".")
                if name.hasBytePrefix(Self.prefix), !name.contains(".lora_"),
                   saved.contains(where: { module == $0 || module.hasByteSuffix("." + $0) }) {
                    guard t.type.plainDType?.isConvertibleFloat ?? false else {
                        throw FTQError.invalid("merge.adapter", file: weights, "tensor \"\(name)\" must be floating point")
                    }
                    replacements.append((base, t))
                    continue
                }
                throw FTQError.invalid("merge.adapter", file: weights,
                    "tensor \"\(name)\" is neither a LoRA A or B weight nor part of a module in modules_to_save (ftq merges plain LoRA adapters)")
            }
            let module = String(name.dropFirst(Self.prefix.count).dropLast(part.count))
            guard let d = t.type.plainDType, d.isConvertibleFloat, t.shape.count == 2 else {
                throw FTQError.invalid("merge.adapter", file: weights, "tensor \"\(name)\" must be a 2-D floating-point tensor")
            }
            if pairs[module] == nil { order.append(module); pairs[module] = (nil, nil) }
            if part == ".lora_A.weight" { pairs[module]!.a = t } else { pairs[module]!.b = t }
        }
        let modules = try order.map { m in
            guard let a = pairs[m]!.a, let b = pairs[m]!.b else {
                throw FTQError.invalid("merge.adapter", file: weights, "module \"\(m)\" lacks its lora_A or lora_B weight")
            }
            let rank = a.shape[0]
            guard b.shape[1] == rank else {
                throw FTQError.invalid("merge.adapter", file: weights, "module \"\(m)\": lora_A is \(a.shape) but lora_B is \(b.shape)")
            }
            let r = Self.match(rankPattern, m) ?? r
            let alpha = Self.match(alphaPattern, m) ?? alpha
            guard Double(rank) == r else {
                throw fail("module \"\(m)\" has rank \(rank) in its weights but \(Int(r)) in the config")
            }
            let scaling = rslora ? alpha / r.squareRoot() : alpha / r
            var module = Module(name: m, a: a, b: b, rank: rank, scaling: scaling)
            if dora {
                guard let mag = magnitudes.removeValue(forKey: m) else {
                    throw FTQError.invalid("merge.adapter", file: weights, "module \"\(m)\" lacks its DoRA lora_magnitude_vector (the config sets use_dora)")
                }
                guard mag.shape == [b.shape[0]] else {
                    throw FTQError.invalid("merge.adapter", file: weights, "module \"\(m)\": lora_magnitude_vector is \(mag.shape) but lora_B is \(b.shape)")
                }
                module.magnitude = mag
            }
            return module
        }
        if let stray = magnitudes.keys.sorted().first {
            throw FTQError.invalid("merge.adapter", file: weights, "module \"\(stray)\" has a DoRA magnitude but no lora_A and lora_B")
        }
        if modules.isEmpty && replacements.isEmpty { throw FTQError.invalid("merge.adapter", file: weights, "the adapter holds no LoRA weights") }
        self.path = directory
        self.configPath = configPath
        self.model = model
        self.fanInFanOut = fanInFanOut
        self.modules = modules
        self.replacements = replacements
        self.useRSLoRA = rslora
        self.useDoRA = dora
        self.maxRank = Int(([r] + rankPattern.map(\.1)).max()!)
        self.isGGUF = false
    }

    /// Opens a PEFT adapter directory, or a llama.cpp GGUF LoRA adapter file.
    public static func open(_ path: String) throws -> LoRAAdapter {
        if path.hasByteSuffix(".gguf") { return try LoRAAdapter(gguf: path) }
        return try LoRAAdapter(directory: path)
    }

    /// A llama.cpp LoRA adapter (convert_lora_to_gguf.py): `general.type` "adapter",
    /// `adapter.type` "lora", `adapter.lora.alpha`, and for each adapted tensor T the pair
    /// `T.lora_a` [r, in], `T.lora_b` [out, r]; scaling alpha / r in float32, as llama.cpp
    /// computes it (formats/lora-merge.md, "GGUF adapters").
    public init(gguf path: String) throws {
        let model = try ModelOpener.open(path)
        func meta(_ k: String) -> GGUFValue? {
            if case let .gguf(v)? = model.metadata.first(where: { $0.0 == k })?.1 { return v }
            return nil
        }
        func fail(_ m: String) -> FTQError { FTQError.invalid("merge.adapter", file: path, m) }
        guard model.format == .gguf, meta("general.type") == .string("adapter") else { throw fail("not a GGUF adapter (general.type is not \"adapter\")") }
        guard meta("adapter.type") == .string("lora") else { throw fail("adapter.type is not \"lora\" (ftq merges LoRA adapters)") }
        var alpha: Float? = nil
        switch meta("adapter.lora.alpha") {
        case let .f32(a)?: alpha = a
        case let .f64(a)?: alpha = Float(a)
        case nil: alpha = nil
        default: throw fail("adapter.lora.alpha must be a number")
        }
        var pairs: [String: (a: TensorEntry?, b: TensorEntry?)] = [:]
        var order: [String] = []
        for t in model.tensors {
            var part: String? = nil
            for s in [".lora_a", ".lora_b"] where t.name.hasByteSuffix(s) { part = s }
            guard let part else { throw fail("tensor \"\(t.name)\" is not a LoRA A or B tensor") }
            guard let d = t.type.plainDType, d.isConvertibleFloat, t.shape.count == 2 else {
                throw fail("tensor \"\(t.name)\" must be a 2-D floating-point tensor (quantized adapters are not supported)")
            }
            var module = String(t.name.dropLast(part.count))
            if module.hasByteSuffix(".weight") { module.removeLast(".weight".count) }
            if pairs[module] == nil { order.append(module); pairs[module] = (nil, nil) }
            if part == ".lora_a" { pairs[module]!.a = t } else { pairs[module]!.b = t }
        }
        modules = try order.map { m in
            guard let a = pairs[m]!.a, let b = pairs[m]!.b, b.shape[1] == a.shape[0] else {
                throw fail("module \"\(m)\" lacks its lora_a or lora_b, or their ranks differ")
            }
            let rank = a.shape[0]
            // llama.cpp: scale = alpha / rank in float32 (1 when alpha is absent or 0).
            let scale: Float = (alpha ?? 0) != 0 ? alpha! / Float(rank) : 1
            return Module(name: m, a: a, b: b, rank: rank, scaling: Double(scale))
        }
        if modules.isEmpty { throw fail("the adapter holds no LoRA tensors") }
        self.path = path
        configPath = path
        self.model = model
        fanInFanOut = false
        replacements = []
        useRSLoRA = false
        useDoRA = false
        maxRank = modules.map(\.rank).max()!
        isGGUF = true
    }

    /// PEFT's pattern lookup: the first key K (in the config's order) such that the module name
    /// is K or ends with "." + K, K read as a regular expression.
    static func match(_ patterns: [(String, Double)], _ module: String) -> Double? {
        for (k, v) in patterns {
            if let re = try? Regex("^(.*\\.)?(" + k + ")$"), (try? re.wholeMatch(in: module)) != nil { return v }
        }
        return nil
    }
}
