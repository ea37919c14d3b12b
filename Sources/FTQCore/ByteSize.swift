/// Byte sizes as Hugging Face writes them (formats/cli.md, "Sizes"):
/// decimal units `KB MB GB TB` are powers of 1000 and binary units `KiB MiB GiB TiB`
/// powers of 1024; a bare number is bytes. `5GB` = 5*10^9, `500MiB` = 500*2^20.
public enum ByteSize {
    public static func parse(_ text: String) throws -> Int {
        let t = text.trimmingWhitespace()
        var digits = ""
        var rest = Substring(t)
        while let c = rest.first, c.isNumber || c == "." { digits.append(c); rest = rest.dropFirst() }
        let unit = rest.trimmingWhitespace().uppercased()
        let mult: Double
        switch unit {
        case "", "B": mult = 1
        case "KB": mult = 1e3
        case "MB": mult = 1e6
        case "GB": mult = 1e9
        case "TB": mult = 1e12
        case "KIB": mult = 1024
        case "MIB": mult = 1_048_576
        case "GIB": mult = 1_073_741_824
        case "TIB": mult = 1_099_511_627_776
        default:
            throw FTQError.usage("usage.size", "cannot read size \"\(text)\": use a number with KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024)")
        }
        guard let n = Double(digits), n > 0 else {
            throw FTQError.usage("usage.size", "cannot read size \"\(text)\": expected a positive number such as 5GB or 500MiB")
        }
        let v = (n * mult).rounded(.down)
        guard v >= 1, v < 9.0e18 else { throw FTQError.usage("usage.size", "size \"\(text)\" is out of range") }
        return Int(v)
    }

    /// A human-readable size with decimal units (`1.23 GB`).
    public static func format(_ bytes: Int) -> String {
        let units = ["B", "KB", "MB", "GB", "TB", "PB"]
        var v = Double(bytes)
        var u = 0
        while v >= 1000, u < units.count - 1 { v /= 1000; u += 1 }
        if u == 0 { return "\(bytes) B" }
        let r = (v * 100).rounded() / 100
        return "\(r) \(units[u])"
    }
}

extension StringProtocol {
    public func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s = s.dropFirst() }
        while let c = s.last, c.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
