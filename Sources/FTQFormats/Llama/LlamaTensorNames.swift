/// Hugging Face Llama tensor names and llama.cpp's (formats/llama-gguf.md), and the per-head
/// row order llama.cpp's converter gives the q and k projections. Shared by `convert` (HF ->
/// GGUF) and `merge` into GGUF bases.
public enum LlamaTensorNames {
    /// Modules inside `model.layers.N.`, by llama.cpp name.
    static let layerModules = [
        "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
        "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    ]

    /// `model.layers.N.self_attn.q_proj` -> `blk.N.attn_q` (nil if not a Llama module name).
    public static func ggufModule(_ module: String) -> String? {
        switch module {
        case "lm_head": return "output"
        case "model.embed_tokens": return "token_embd"
        case "model.norm": return "output_norm"
        default: break
        }
        let parts = module.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 4, parts[0] == "model", parts[1] == "layers", let n = Int(parts[2]), n >= 0,
              String(n) == parts[2] else { return nil }
        guard let g = layerModules[parts[3...].joined(separator: ".")] else { return nil }
        return "blk.\(n).\(g)"
    }

    /// `model.layers.N.self_attn.q_proj.weight` -> `blk.N.attn_q.weight` (`.weight` and `.bias`).
    public static func ggufTensor(_ name: String) -> String? {
        for suffix in [".weight", ".bias"] where name.hasByteSuffix(suffix) {
            return ggufModule(String(name.utf8.dropLast(suffix.utf8.count))!).map { $0 + suffix }
        }
        return nil
    }

    /// Tensors a Hugging Face checkpoint may hold that llama.cpp does not use (RoPE's inverse
    /// frequencies, which it computes).
    public static func isIgnored(_ name: String) -> Bool {
        name.hasByteSuffix(".rotary_emb.inv_freq")
    }

    /// GGUF row -> Hugging Face row of a q or k projection for `heads` heads: convert_hf_to_gguf
    /// reshapes the rows to (heads, 2, d/2) and swaps the last two axes, so the rows of a head
    /// h, [h][j][i] (j < 2, i < d/2) in Hugging Face order, are stored [h][i][j].
    public static func hfRow(_ r: Int, rows: Int, heads: Int) -> Int {
        let d = rows / heads
        let h = r / d, within = r % d
        let i = within / 2, j = within % 2
        return h * d + j * (d / 2) + i
    }

    /// Rows of `cols` values in Hugging Face order -> llama.cpp's order (GGUF row r holds Hugging
    /// Face row `hfRow(r)`).
    public static func permuteToGGUF(_ x: [Float], rows: Int, cols: Int, heads: Int) -> [Float] {
        var out = x
        for r in 0..<rows {
            let src = hfRow(r, rows: rows, heads: heads)
            for c in 0..<cols { out[r * cols + c] = x[src * cols + c] }
        }
        return out
    }

    /// The inverse of `permuteToGGUF`.
    public static func permuteToHF(_ x: [Float], rows: Int, cols: Int, heads: Int) -> [Float] {
        var out = x
        for r in 0..<rows {
            let dst = hfRow(r, rows: rows, heads: heads)
            for c in 0..<cols { out[dst * cols + c] = x[r * cols + c] }
        }
        return out
    }
}
