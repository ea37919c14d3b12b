/// llama.cpp's Llama tensor names back to Hugging Face's (formats/llama-gguf.md, "GGUF to
/// Hugging Face"): the inverse of `ggufModule` / `ggufTensor`.
extension LlamaTensorNames {
    /// `blk.N.attn_q` -> `model.layers.N.self_attn.q_proj` (nil if not a Llama module name).
    public static func hfModule(_ module: String) -> String? {
        switch module {
        case "output": return "lm_head"
        case "token_embd": return "model.embed_tokens"
        case "output_norm": return "model.norm"
        default: break
        }
        let parts = module.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, parts[0] == "blk", let n = Int(parts[1]), n >= 0, String(n) == parts[1] else { return nil }
        guard let hf = layerModules.first(where: { $0.value == parts[2] })?.key else { return nil }
        return "model.layers.\(n).\(hf)"
    }

    /// `blk.N.attn_q.weight` -> `model.layers.N.self_attn.q_proj.weight` (`.weight` and `.bias`).
    public static func hfTensor(_ name: String) -> String? {
        for suffix in [".weight", ".bias"] where name.hasByteSuffix(suffix) {
            return hfModule(String(name.utf8.dropLast(suffix.utf8.count))!).map { $0 + suffix }
        }
        return nil
    }

    /// The layer number of a `blk.N.` tensor name.
    static func layer(of ggufName: String) -> Int? {
        let parts = ggufName.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "blk", let n = Int(parts[1]), String(n) == parts[1] else { return nil }
        return n
    }

    /// The rows of a q or k projection in llama.cpp's order, each `rowBytes` bytes, put back in
    /// Hugging Face's order (GGUF row r is Hugging Face row `hfRow(r)`): the inverse of
    /// `permuteToGGUF`, on bytes of any dtype, so that F16 and BF16 rows move unchanged.
    public static func rowsToHF(_ x: [UInt8], rows: Int, heads: Int) -> [UInt8] {
        guard rows > 0 else { return x }
        let rowBytes = x.count / rows
        var out = x
        x.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                for r in 0..<rows {
                    let to = hfRow(r, rows: rows, heads: heads)
                    (dst.baseAddress! + to * rowBytes).copyMemory(from: src.baseAddress! + r * rowBytes, byteCount: rowBytes)
                }
            }
        }
        return out
    }
}
