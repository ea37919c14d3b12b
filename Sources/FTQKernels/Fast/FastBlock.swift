/// Pieces the fast block quantizers share.
enum FastBlock {
    /// The largest magnitude bit pattern of a 32-element block. For finite floats, ordering the
    /// patterns orders the magnitudes; a result at or above 0x7f800000 means the block holds an
    /// infinity or a NaN (and goes through the reference).
    @inline(__always)
    static func maxMagnitudeBits(_ p: UnsafePointer<Float>) -> UInt32 {
        var m: UInt32 = 0
        for j in 0..<32 { m = Swift.max(m, p[j].bitPattern & 0x7fff_ffff) }
        return m
    }
}
