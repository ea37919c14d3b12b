import FTQCore

/// The GGUF metadata value types, numbered as in the file (formats/gguf.md, "Value types").
public enum GGUFValueType: UInt32, Sendable, CaseIterable {
    case u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, bool = 7, string = 8
    case array = 9, u64 = 10, i64 = 11, f64 = 12

    /// The name used by `ftq inspect --json` in `metadata_types`.
    public var name: String {
        switch self {
        case .u8: return "u8"
        case .i8: return "i8"
        case .u16: return "u16"
        case .i16: return "i16"
        case .u32: return "u32"
        case .i32: return "i32"
        case .f32: return "f32"
        case .bool: return "bool"
        case .string: return "string"
        case .array: return "array"
        case .u64: return "u64"
        case .i64: return "i64"
        case .f64: return "f64"
        }
    }

    /// Bytes of a fixed-size value; nil for string and array.
    public var fixedSize: Int? {
        switch self {
        case .u8, .i8, .bool: return 1
        case .u16, .i16: return 2
        case .u32, .i32, .f32: return 4
        case .u64, .i64, .f64: return 8
        case .string, .array: return nil
        }
    }
}

/// A GGUF metadata value.
public enum GGUFValue: Sendable, Equatable {
    case u8(UInt8), i8(Int8), u16(UInt16), i16(Int16), u32(UInt32), i32(Int32)
    case f32(Float), bool(Bool), string(String)
    /// An array of elements of one type (see ``GGUFArray``).
    case array(GGUFArray)
    case u64(UInt64), i64(Int64), f64(Double)

    public var type: GGUFValueType {
        switch self {
        case .u8: return .u8
        case .i8: return .i8
        case .u16: return .u16
        case .i16: return .i16
        case .u32: return .u32
        case .i32: return .i32
        case .f32: return .f32
        case .bool: return .bool
        case .string: return .string
        case .array: return .array
        case .u64: return .u64
        case .i64: return .i64
        case .f64: return .f64
        }
    }

    /// The type name shown by inspect: `u32`, `string`, `array[string]`, `array[array[i32]]`.
    public var typeName: String {
        if case let .array(a) = self {
            if a.elementType == .array, let first = a.prefix(1).first { return "array[\(first.typeName)]" }
            return "array[\(a.elementType.name)]"
        }
        return type.name
    }

    /// The value as a plain JSON value (arrays complete).
    public var json: JSONValue {
        switch self {
        case let .u8(v): return .int(v)
        case let .i8(v): return .int(v)
        case let .u16(v): return .int(v)
        case let .i16(v): return .int(v)
        case let .u32(v): return .int(v)
        case let .i32(v): return .int(v)
        case let .u64(v): return .int(v)
        case let .i64(v): return .int(v)
        case let .f32(v): return v.isFinite ? .number("\(v)") : .null
        case let .f64(v): return .double(v)
        case let .bool(v): return .bool(v)
        case let .string(s): return .string(s)
        case let .array(a): return .array(a.values.map(\.json))
        }
    }

    /// The value as an unsigned integer, if it is any integer type and non-negative.
    public var unsignedValue: UInt64? {
        switch self {
        case let .u8(v): return UInt64(v)
        case let .u16(v): return UInt64(v)
        case let .u32(v): return UInt64(v)
        case let .u64(v): return v
        case let .i8(v): return v >= 0 ? UInt64(v) : nil
        case let .i16(v): return v >= 0 ? UInt64(v) : nil
        case let .i32(v): return v >= 0 ? UInt64(v) : nil
        case let .i64(v): return v >= 0 ? UInt64(v) : nil
        default: return nil
        }
    }

    /// An array value from decoded elements, all of type `elementType`.
    public static func array(_ elementType: GGUFValueType, _ values: [GGUFValue]) -> GGUFValue {
        .array(GGUFArray(elementType, values))
    }

    public static func == (a: GGUFValue, b: GGUFValue) -> Bool {
        switch (a, b) {
        // Floats compare by bits so that NaNs round-trip as equal.
        case let (.f32(x), .f32(y)): return x.bitPattern == y.bitPattern
        case let (.f64(x), .f64(y)): return x.bitPattern == y.bitPattern
        case let (.u8(x), .u8(y)): return x == y
        case let (.i8(x), .i8(y)): return x == y
        case let (.u16(x), .u16(y)): return x == y
        case let (.i16(x), .i16(y)): return x == y
        case let (.u32(x), .u32(y)): return x == y
        case let (.i32(x), .i32(y)): return x == y
        case let (.u64(x), .u64(y)): return x == y
        case let (.i64(x), .i64(y)): return x == y
        case let (.bool(x), .bool(y)): return x == y
        case let (.string(x), .string(y)): return ExactName(x) == ExactName(y)
        case let (.array(x), .array(y)): return x == y
        default: return false
        }
    }
}
