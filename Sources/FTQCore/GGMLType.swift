/// A ggml tensor type, as numbered in ggml.h (formats/gguf.md, "Tensor types").
public struct GGMLType: Hashable, Sendable, CustomStringConvertible {
    /// The type number stored in a GGUF tensor info.
    public let rawValue: UInt32
    /// ggml's name (`F32`, `Q4_K`, ...).
    public let name: String
    /// Elements per block (1 for plain types).
    public let blockSize: Int
    /// Bytes per block.
    public let typeSize: Int

    public var description: String { name }
    public var isQuantized: Bool { blockSize > 1 }

    /// Looks up a type number; nil for numbers ggml does not define.
    public static func known(_ raw: UInt32) -> GGMLType? { table[raw] }

    /// Looks up a type by ggml's name.
    public static func named(_ name: String) -> GGMLType? { table.values.first { $0.name == name.uppercased() } }

    /// Type numbers that ggml once used and has removed (named in errors).
    public static let removed: [UInt32: String] = [
        4: "Q4_2", 5: "Q4_3", 31: "Q4_0_4_4", 32: "Q4_0_4_8", 33: "Q4_0_8_8",
        36: "IQ4_NL_4_4", 37: "IQ4_NL_4_8", 38: "IQ4_NL_8_8",
    ]

    public static let F32 = GGMLType(rawValue: 0, name: "F32", blockSize: 1, typeSize: 4)
    public static let F16 = GGMLType(rawValue: 1, name: "F16", blockSize: 1, typeSize: 2)
    public static let BF16 = GGMLType(rawValue: 30, name: "BF16", blockSize: 1, typeSize: 2)
    public static let F64 = GGMLType(rawValue: 28, name: "F64", blockSize: 1, typeSize: 8)
    public static let I8 = GGMLType(rawValue: 24, name: "I8", blockSize: 1, typeSize: 1)
    public static let I16 = GGMLType(rawValue: 25, name: "I16", blockSize: 1, typeSize: 2)
    public static let I32 = GGMLType(rawValue: 26, name: "I32", blockSize: 1, typeSize: 4)
    public static let I64 = GGMLType(rawValue: 27, name: "I64", blockSize: 1, typeSize: 8)

    /// Every type ggml defines today: number, name, block elements, block bytes.
    public static let all: [GGMLType] = [
        F32, F16,
        GGMLType(rawValue: 2, name: "Q4_0", blockSize: 32, typeSize: 18),
        GGMLType(rawValue: 3, name: "Q4_1", blockSize: 32, typeSize: 20),
        GGMLType(rawValue: 6, name: "Q5_0", blockSize: 32, typeSize: 22),
        GGMLType(rawValue: 7, name: "Q5_1", blockSize: 32, typeSize: 24),
        GGMLType(rawValue: 8, name: "Q8_0", blockSize: 32, typeSize: 34),
        GGMLType(rawValue: 9, name: "Q8_1", blockSize: 32, typeSize: 36),
        GGMLType(rawValue: 10, name: "Q2_K", blockSize: 256, typeSize: 84),
        GGMLType(rawValue: 11, name: "Q3_K", blockSize: 256, typeSize: 110),
        GGMLType(rawValue: 12, name: "Q4_K", blockSize: 256, typeSize: 144),
        GGMLType(rawValue: 13, name: "Q5_K", blockSize: 256, typeSize: 176),
        GGMLType(rawValue: 14, name: "Q6_K", blockSize: 256, typeSize: 210),
        GGMLType(rawValue: 15, name: "Q8_K", blockSize: 256, typeSize: 292),
        GGMLType(rawValue: 16, name: "IQ2_XXS", blockSize: 256, typeSize: 66),
        GGMLType(rawValue: 17, name: "IQ2_XS", blockSize: 256, typeSize: 74),
        GGMLType(rawValue: 18, name: "IQ3_XXS", blockSize: 256, typeSize: 98),
        GGMLType(rawValue: 19, name: "IQ1_S", blockSize: 256, typeSize: 50),
        GGMLType(rawValue: 20, name: "IQ4_NL", blockSize: 32, typeSize: 18),
        GGMLType(rawValue: 21, name: "IQ3_S", blockSize: 256, typeSize: 110),
        GGMLType(rawValue: 22, name: "IQ2_S", blockSize: 256, typeSize: 82),
        GGMLType(rawValue: 23, name: "IQ4_XS", blockSize: 256, typeSize: 136),
        I8, I16, I32, I64, F64,
        GGMLType(rawValue: 29, name: "IQ1_M", blockSize: 256, typeSize: 56),
        BF16,
        GGMLType(rawValue: 34, name: "TQ1_0", blockSize: 256, typeSize: 54),
        GGMLType(rawValue: 35, name: "TQ2_0", blockSize: 256, typeSize: 66),
        GGMLType(rawValue: 39, name: "MXFP4", blockSize: 32, typeSize: 17),
        GGMLType(rawValue: 40, name: "NVFP4", blockSize: 64, typeSize: 36),
        GGMLType(rawValue: 41, name: "Q1_0", blockSize: 128, typeSize: 18),
        GGMLType(rawValue: 42, name: "Q2_0", blockSize: 64, typeSize: 18),
    ]

    static let table: [UInt32: GGMLType] = Dictionary(uniqueKeysWithValues: all.map { ($0.rawValue, $0) })

    /// The bytes of a row of `n` elements, or nil when `n` is not a multiple of the block
    /// size or the size overflows.
    public func rowBytes(_ n: Int) -> Int? {
        guard n >= 0, n % blockSize == 0 else { return nil }
        let (b, o) = (n / blockSize).multipliedReportingOverflow(by: typeSize)
        return o ? nil : b
    }
}
