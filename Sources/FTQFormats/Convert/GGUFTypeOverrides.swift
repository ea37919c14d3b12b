import FTQCore
import FTQKernels

/// Per-tensor types of a GGUF output, given as llama-quantize gives them:
/// `--token-embedding-type`, `--output-tensor-type` and `--tensor-type PATTERN=TYPE`
/// (formats/llama-gguf.md, "Type overrides"). They apply to 2-D weights, by GGUF tensor name.
public struct GGUFTypeOverrides: Sendable {
    /// A type a 2-D weight can be written as: a ggml block type, or F32, F16, BF16.
    public enum Target: Sendable, Equatable {
        case quantized(GGMLQuantizeType)
        case plain(DType)

        /// The type named `name` (any case); nil when ftq cannot write it.
        public init?(name: String) {
            let upper = name.uppercased()
            if let q = GGMLQuantizeType(rawValue: upper) {
                self = .quantized(q)
            } else if let d = DType(rawValue: upper), [.F32, .F16, .BF16].contains(d) {
                self = .plain(d)
            } else {
                return nil
            }
        }

        /// The canonical name: `Q4_K`, `F16`, ...
        public var name: String {
            switch self {
            case let .quantized(q): return q.rawValue
            case let .plain(d): return d.rawValue
            }
        }

        static let names = "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K or Q6_K"
    }

    /// One `--tensor-type PATTERN=TYPE`.
    public struct Rule: Sendable {
        /// The pattern as matched: the given one with its ASCII letters lowercased, as
        /// llama-quantize does.
        public let pattern: String
        public let target: Target
        let regex: CompiledPattern
    }

    /// `token_embd.weight`'s type.
    public var tokenEmbedding: Target?
    /// `output.weight`'s type.
    public var output: Target?
    /// The `--tensor-type` rules in command-line order; the first that matches a name wins.
    public var rules: [Rule]

    /// No overrides.
    public init() {
        tokenEmbedding = nil
        output = nil
        rules = []
    }

    /// Parses the options; a type ftq cannot write, a rule without `=`, an empty pattern or
    /// type, or a pattern that is not a regular expression is a usage error naming it.
    public init(tokenEmbedding: String?, output: String?, tensorTypes: [String]) throws {
        func target(_ option: String, _ name: String) throws -> Target {
            guard let t = Target(name: name) else {
                throw FTQError.usage("usage.type", "\(option): \"\(name)\" is not a type ftq writes (\(Target.names))")
            }
            return t
        }
        self.tokenEmbedding = try tokenEmbedding.map { try target("--token-embedding-type", $0) }
        self.output = try output.map { try target("--output-tensor-type", $0) }
        rules = try tensorTypes.map { spec in
            // Split at the first "=", as llama-quantize does: a pattern cannot hold one.
            guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex, spec.index(after: eq) != spec.endIndex else {
                throw FTQError.usage("usage.tensor-type", "--tensor-type \"\(spec)\": expected PATTERN=TYPE, e.g. attn_v=Q8_0")
            }
            let pattern = String(spec[..<eq]).lowercasedASCII
            let t = try target("--tensor-type \"\(spec)\"", String(spec[spec.index(after: eq)...]))
            guard let regex = CompiledPattern(pattern) else {
                throw FTQError.usage("usage.tensor-type", "--tensor-type \"\(spec)\": \"\(pattern)\" is not a valid regular expression")
            }
            return Rule(pattern: pattern, target: t, regex: regex)
        }
    }

    public var isEmpty: Bool { tokenEmbedding == nil && output == nil && rules.isEmpty }

    /// The type the 2-D weight with GGUF name `name` is given, if any: `--token-embedding-type`
    /// for `token_embd.weight` and `--output-tensor-type` for `output.weight` first, then the
    /// first rule whose pattern occurs in the name (a search, not a whole-name match).
    public func target(for name: String) -> Target? {
        if name == "token_embd.weight", let t = tokenEmbedding { return t }
        if name == "output.weight", let t = output { return t }
        return rules.first { $0.regex.occurs(in: name) }?.target
    }

    /// The rules whose pattern occurs in none of `names`.
    public func unmatchedRules(_ names: [String]) -> [Rule] {
        rules.filter { r in !names.contains { r.regex.occurs(in: $0) } }
    }

    /// Canonical command-line words: `--token-embedding-type T`, `--output-tensor-type T`, then
    /// each `--tensor-type pattern=T` in order (patterns lowercased, types canonical).
    public var commandLine: [String] {
        var words: [String] = []
        if let t = tokenEmbedding { words += ["--token-embedding-type", t.name] }
        if let t = output { words += ["--output-tensor-type", t.name] }
        for r in rules { words += ["--tensor-type", r.pattern + "=" + r.target.name] }
        return words
    }

    /// The manifest's options members.
    public var manifestOptions: [(String, JSONValue)] {
        [
            ("token_embedding_type", tokenEmbedding.map { .string($0.name) } ?? .null),
            ("output_tensor_type", output.map { .string($0.name) } ?? .null),
            ("tensor_types", .array(rules.map { .object([("pattern", .string($0.pattern)), ("type", .string($0.target.name))]) })),
        ]
    }
}

/// A compiled regular expression, searched for in tensor names (used from one thread at a time).
struct CompiledPattern: @unchecked Sendable {
    let regex: Regex<AnyRegexOutput>

    init?(_ pattern: String) {
        guard let r = try? Regex(pattern) else { return nil }
        regex = r
    }

    func occurs(in name: String) -> Bool {
        (try? regex.firstMatch(in: name)) != nil
    }
}

extension String {
    /// The string with A-Z mapped to a-z and every other character unchanged.
    var lowercasedASCII: String {
        String(decoding: utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }, as: UTF8.self)
    }
}
