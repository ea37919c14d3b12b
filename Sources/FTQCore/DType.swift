/// The element types of safetensors, by their header names (formats/safetensors.md, "Dtypes").
///
/// The declaration order is the format's alignment order: the writer sorts tensors by
/// descending position in this list, then by name, as the reference implementation does.
public enum DType: String, CaseIterable, Sendable, Comparable {
    case BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ
    case I16, U16, F16, BF16, I32, U32, F32, C64, F64, I64, U64

    /// Bits per element (4 and 6 for the packed sub-byte floats).
    public var bits: Int {
        switch self {
        case .F4: return 4
        case .F6_E2M3, .F6_E3M2: return 6
        case .BOOL, .U8, .I8, .F8_E5M2, .F8_E4M3, .F8_E8M0, .F8_E4M3FNUZ, .F8_E5M2FNUZ: return 8
        case .I16, .U16, .F16, .BF16: return 16
        case .I32, .U32, .F32: return 32
        case .C64, .F64, .I64, .U64: return 64
        }
    }

    /// The position in the alignment order.
    public var rank: Int { DType.allCases.firstIndex(of: self)! }

    public static func < (a: DType, b: DType) -> Bool { a.rank < b.rank }

    /// True for the four IEEE-style float types that `--dtype` converts between.
    public var isConvertibleFloat: Bool { self == .F64 || self == .F32 || self == .F16 || self == .BF16 }

    /// The number of bytes `elements` elements occupy, or nil when the product overflows
    /// or does not fill whole bytes (an odd number of F4 elements, say).
    public func byteCount(elements: Int) -> Int? {
        let (b, o) = elements.multipliedReportingOverflow(by: bits)
        if o || b % 8 != 0 { return nil }
        return b / 8
    }
}
