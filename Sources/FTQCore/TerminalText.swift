/// Text from files, made safe to print on a terminal.
public enum TerminalText {
    /// Escapes backslashes, C0 and C1 control characters, DEL, and the invisible characters
    /// that can disguise text (bidirectional overrides and isolates, zero-width characters,
    /// line and paragraph separators): `\n` becomes `\\n`, ESC `\\u{1b}`, U+202E `\\u{202e}`.
    /// Shortens the text to `limit` characters.
    public static func escaped(_ s: String, limit: Int = .max) -> String {
        var out = ""
        var n = 0
        for u in s.unicodeScalars {
            if n >= limit {
                out += "... (\(s.unicodeScalars.count - n) more characters)"
                break
            }
            switch u.value {
            case 0x5c: out += "\\\\"
            case 0x0a: out += "\\n"
            case 0x0d: out += "\\r"
            case 0x09: out += "\\t"
            case 0..<0x20, 0x7f..<0xa0, 0x200b...0x200f, 0x2028...0x202e, 0x2060...0x2069, 0xfeff:
                out += "\\u{" + String(u.value, radix: 16) + "}"
            default: out.unicodeScalars.append(u)
            }
            n += 1
        }
        return out
    }
}
