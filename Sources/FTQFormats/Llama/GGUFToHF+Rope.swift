#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FTQCore

extension GGUFToHF {
    /// Llama 3 RoPE scaling (config.json `rope_scaling`, `rope_type` "llama3") from a GGUF's
    /// `rope_freqs.weight`, only when exact: the factors depend on `factor` and on
    /// `original_max_position_embeddings / low_freq_factor` and `/ high_freq_factor`, so with
    /// Llama 3's `low_freq_factor` 1 and `high_freq_factor` 4 the factor is the last value and
    /// `original_max_position_embeddings` follows from any value between 1 and the factor;
    /// candidates (those, then 8192, the context length and powers of two) are tried in turn and
    /// the first whose config.json, read back as `ftq convert HFDIR -o NAME.gguf` reads it, gives
    /// the same factors bit for bit is taken. Anything else is refused: transformers has no way
    /// to load other per-frequency factors. `members` gives config.json for a `rope_scaling`.
    func llama3Scaling(_ values: [Float], config c: GGUFLlamaConfig,
                       members: (JSONValue) -> [(String, JSONValue)]) throws -> JSONValue {
        let dim = c.headSize
        func bad(_ why: String) -> FTQError { FTQError.invalid("convert.llama-rope", file: model.path, "rope_freqs.weight " + why) }
        guard values.count * 2 == dim else { throw bad("has \(values.count) factors, not half the head size (\(dim / 2))") }
        guard values.allSatisfy({ $0.isFinite && $0 > 0 }) else { throw bad("holds a factor that is not a positive finite number") }
        let low = 1.0, high = 4.0
        var factors: [Float] = []
        if let last = values.last, last != 1 { factors.append(last) }
        if !factors.contains(8) { factors.append(8) }
        for factor in factors {
            var olds: [Double] = []
            for (j, v) in values.enumerated() where v != 1 && v != factor {
                let s = (1 / Double(v) - 1 / Double(factor)) / (1 - 1 / Double(factor))
                let wavelen = 2 * Double.pi * pow(Double(c.ropeTheta), Double(2 * j) / Double(dim))
                let old = (wavelen * (s * (high - low) + low)).rounded()
                if old.isFinite, old >= 1, old <= Double(Int32.max), !olds.contains(old) { olds.append(old) }
            }
            for o in [8192.0, Double(c.contextLength)] + (0...24).map({ Double(1 << $0) }) where !olds.contains(o) { olds.append(o) }
            for old in olds {
                let scaling = JSONValue.object([
                    ("factor", GGUFLlamaConfig.number(factor)),
                    ("high_freq_factor", .number("4.0")),
                    ("low_freq_factor", .number("1.0")),
                    ("original_max_position_embeddings", .int(Int(old))),
                    ("rope_type", .string("llama3")),
                ])
                let back = try LlamaGGUF(config: .object(members(scaling)), path: model.path, name: "model", modelType: "llama")
                if let f = back.ropeFreqs(), f.count == values.count,
                   zip(f, values).allSatisfy({ $0.bitPattern == $1.bitPattern }) {
                    return scaling
                }
            }
        }
        let shown = values.prefix(8).map { "\($0)" }.joined(separator: ", ") + (values.count > 8 ? ", ..." : "")
        throw bad("[\(shown)] is not Llama 3 RoPE scaling (low_freq_factor 1, high_freq_factor 4) for any factor and original context ftq tries; transformers cannot load other per-frequency factors")
    }
}
