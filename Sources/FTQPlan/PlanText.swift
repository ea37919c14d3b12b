/// Number formatting shared by the estimates and the command's output.
public enum PlanText {
    /// An integer with thousands separators: 8,030,261,248.
    public static func count(_ v: Int) -> String {
        let digits = String(v.magnitude)
        var out = ""
        for (k, ch) in digits.enumerated() {
            if k > 0 && (digits.count - k) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return (v < 0 ? "-" : "") + out
    }

    /// A number with up to three decimals, trailing zeros dropped: 4.127, 41, 16.03.
    public static func decimal(_ v: Double) -> String {
        let r = (v * 1000).rounded() / 1000
        if r == r.rounded() && abs(r) < 1e15 { return String(Int(r)) }
        var s = String(format3(r))
        while s.hasSuffix("0") { s.removeLast() }
        return s
    }

    static func format3(_ v: Double) -> String {
        let scaled = Int((abs(v) * 1000).rounded())
        let frac = scaled % 1000
        let fracText = String(frac)
        return (v < 0 ? "-" : "") + String(scaled / 1000) + "." + String(repeating: "0", count: 3 - fracText.count) + fracText
    }

    /// Bytes in decimal gigabytes with two decimals: `16.06 GB`.
    public static func gb(_ bytes: Double) -> String {
        let v = (bytes / 1e9 * 100).rounded() / 100
        let whole = Int(v.rounded(.towardZero))
        let cents = Int((abs(v - Double(whole)) * 100).rounded())
        return "\(whole).\(cents < 10 ? "0" : "")\(cents) GB"
    }
}
