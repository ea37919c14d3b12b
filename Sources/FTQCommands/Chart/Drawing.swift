import FTQArtifacts

/// A colour, 8 bits per channel.
struct RGB: Equatable {
    var r: UInt8, g: UInt8, b: UInt8

    init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { (self.r, self.g, self.b) = (r, g, b) }

    static let white = RGB(255, 255, 255), black = RGB(0, 0, 0)

    var hex: String {
        let digits = Array("0123456789abcdef")
        return "#" + [r, g, b].map { String([digits[Int($0 >> 4)], digits[Int($0 & 15)]]) }.joined()
    }
}

/// A chart as a list of marks in pixel coordinates, rendered either as SVG text or as pixels
/// (PNG). Both renderings place every mark at the same coordinates; the PNG draws text with
/// PixelFont, so its letters are smaller than the SVG's and do not scale with `size`.
struct Drawing {
    enum Anchor: String { case start, middle, end }

    enum Mark {
        /// A filled rectangle with an optional one-pixel outline and an SVG tooltip.
        case rect(x: Int, y: Int, width: Int, height: Int, fill: RGB, stroke: RGB?, title: String?)
        /// Text whose baseline starts, is centred or ends at (x, y); `vertical` turns it a
        /// quarter turn anticlockwise about that point.
        case text(x: Int, y: Int, String, size: Int, anchor: Anchor, bold: Bool, fill: RGB, vertical: Bool)
    }

    var width: Int
    var height: Int
    var marks: [Mark] = []

    mutating func rect(_ x: Int, _ y: Int, _ w: Int, _ h: Int, fill: RGB, stroke: RGB? = nil, title: String? = nil) {
        marks.append(.rect(x: x, y: y, width: w, height: h, fill: fill, stroke: stroke, title: title))
    }

    mutating func text(_ x: Int, _ y: Int, _ s: String, size: Int, anchor: Anchor = .start, bold: Bool = false,
                       fill: RGB = .black, vertical: Bool = false) {
        marks.append(.text(x: x, y: y, s, size: size, anchor: anchor, bold: bold, fill: fill, vertical: vertical))
    }

    // MARK: SVG

    /// A self-contained SVG document that declares its size in `width` and `height`.
    func svg() -> String {
        var s = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" font-family="DejaVu Sans, Arial, sans-serif">

        """
        for m in marks {
            switch m {
            case let .rect(x, y, w, h, fill, stroke, title):
                s += "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(w)\" height=\"\(h)\" fill=\"\(fill.hex)\""
                if let stroke { s += " stroke=\"\(stroke.hex)\"" }
                s += title.map { "><title>\(Self.escape($0))</title></rect>\n" } ?? "/>\n"
            case let .text(x, y, text, size, anchor, bold, fill, vertical):
                s += "<text x=\"\(x)\" y=\"\(y)\" font-size=\"\(size)\""
                if bold { s += " font-weight=\"bold\"" }
                if anchor != .start { s += " text-anchor=\"\(anchor.rawValue)\"" }
                if fill != .black { s += " fill=\"\(fill.hex)\"" }
                if vertical { s += " transform=\"rotate(-90 \(x) \(y))\"" }
                s += ">\(Self.escape(text))</text>\n"
            }
        }
        return s + "</svg>\n"
    }

    static func escape(_ s: String) -> String {
        var o = ""
        for u in s.unicodeScalars {
            switch u {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            default:
                // Characters XML 1.0 forbids are replaced.
                if u.value < 0x20 && u != "\t" && u != "\n" { o += "?" } else { o.unicodeScalars.append(u) }
            }
        }
        return o
    }

    // MARK: pixels

    /// The marks drawn in order onto a white canvas: RGB bytes, rows top to bottom. Everything
    /// outside the canvas is clipped.
    func pixels() -> [UInt8] {
        var px = [UInt8](repeating: 255, count: width * height * 3)
        func plot(_ x: Int, _ y: Int, _ c: RGB) {
            guard x >= 0 && y >= 0 && x < width && y < height else { return }
            let i = (y * width + x) * 3
            (px[i], px[i + 1], px[i + 2]) = (c.r, c.g, c.b)
        }
        for m in marks {
            switch m {
            case let .rect(x, y, w, h, fill, stroke, _):
                for yy in max(0, y)..<max(max(0, y), min(height, y + h)) {
                    for xx in max(0, x)..<max(max(0, x), min(width, x + w)) { plot(xx, yy, fill) }
                }
                if let stroke, w > 0, h > 0 {
                    for xx in x..<(x + w) { plot(xx, y, stroke); plot(xx, y + h - 1, stroke) }
                    for yy in y..<(y + h) { plot(x, yy, stroke); plot(x + w - 1, yy, stroke) }
                }
            case let .text(x, y, text, _, anchor, bold, fill, vertical):
                let w = PixelFont.textWidth(text)
                let shift = anchor == .start ? 0 : anchor == .middle ? w / 2 : w
                for (k, u) in text.unicodeScalars.enumerated() {
                    let rows = PixelFont.rows(u)
                    for r in 0..<PixelFont.height {
                        for c in 0..<PixelFont.width where rows[r] >> UInt8(PixelFont.width - 1 - c) & 1 != 0 {
                            // Along the text, and below the baseline (negative: above it).
                            let along = k * PixelFont.advance + c - shift
                            let below = r - PixelFont.ascent
                            for extra in 0...(bold ? 1 : 0) {
                                if vertical { plot(x + below, y - along - extra, fill) } else { plot(x + along + extra, y + below, fill) }
                            }
                        }
                    }
                }
            }
        }
        return px
    }

    /// The PNG file of `pixels()`.
    func png() -> [UInt8] {
        PNGEncoder.encode(width: width, height: height, rgb: pixels())
    }
}
