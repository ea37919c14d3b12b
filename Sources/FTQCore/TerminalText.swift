/// Text from files, made safe to print on a terminal.
public enum TerminalText {
    /// Escapes C0 and C1 control characters and DEL (`\n` stays visible as `\\n`, ESC becomes
    /// `\\u{1b}`), and shortens the text to `limit` characters.
    public static func escaped(_ s: String, limit: Int = .max) -> String {
        var out = ""
        var n = 0
        for u in s.unicodeScalars {
            if n >= limit {
                out += "... (\(s.unicodeScalars.count - n) more characters)"
                break
            }
            switch u.value {
            case 0x0a: out += "\\n"
            case 0x0d: out += "\\r"
            case 0x09: out += "\\t"
            case 0..<0x20, 0x7f..<0xa0: out += "\\u{" + String(u.value, radix: 16) + "}"
            default: out.unicodeScalars.append(u)
            }
            n += 1
        }
        return out
    }
}
