import Foundation
import Testing
@testable import FTQCore
@testable import FTQFormats

/// Writes GGUF files with ftq's layout and reads them back (the peer comparisons are in
/// FTQCLITests/InteropTests).
@Suite struct GGUFRoundTripTests {
    static let everyValue: [(String, GGUFValue)] = [
        ("general.architecture", .string("llama")),
        ("t.u8", .u8(200)), ("t.i8", .i8(-100)), ("t.u16", .u16(60000)), ("t.i16", .i16(-30000)),
        ("t.u32", .u32(4_000_000_000)), ("t.i32", .i32(-2_000_000_000)), ("t.f32", .f32(.init(bitPattern: 0x7fc0_0001))),
        ("t.bool", .bool(true)), ("t.string", .string("héllo {{ jinja }}\n")),
        ("t.u64", .u64(.max)), ("t.i64", .i64(.min)), ("t.f64", .f64(-0.0)),
        ("t.array.string", .array(.string, [.string("a"), .string(""), .string("ü")])),
        ("t.array.i32", .array(.i32, [.i32(1), .i32(-2)])),
        ("t.array.empty", .array(.u8, [])),
        ("t.array.nested", .array(.array, [.array(.u16, [.u16(1)]), .array(.u16, [.u16(2), .u16(3)])])),
    ]

    func writeFile(_ metadata: [(String, GGUFValue)], _ tensors: [(name: String, type: GGMLType, shape: [Int])],
                   fill: (Int) -> UInt8 = { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }) throws -> (String, GGUFLayout) {
        let layout = try GGUFLayout(metadata: metadata, tensors: tensors)
        var bytes = layout.headerBytes
        for item in layout.items {
            bytes += (0..<item.nbytes).map(fill)
            bytes += [UInt8](repeating: 0, count: item.padding)
        }
        #expect(bytes.count == layout.fileSize)
        return (try FormatTestSupport.tempFile(bytes, name: "m.gguf"), layout)
    }

    @Test func everyValueTypeRoundTrips() throws {
        let (path, _) = try writeFile(Self.everyValue, [("w", .F32, [2, 3])])
        let model = try GGUFReader.open(path)
        #expect(model.version == 3)
        #expect(model.metadata.count == Self.everyValue.count)
        for ((k1, v1), (k2, v2)) in zip(model.metadata, Self.everyValue) {
            #expect(k1 == k2)
            #expect(v1 == .gguf(v2), "value of \(k1)")
        }
        if case let .gguf(v)? = model.metadata.first(where: { $0.0 == "t.array.nested" })?.1 {
            #expect(v.typeName == "array[array[u16]]")
        }
    }

    @Test func shapesAreNeReversedAndOffsetsAbsolute() throws {
        let q40 = GGMLType.known(2)!
        let (path, layout) = try writeFile([("general.alignment", .u32(64))],
                                           [("a", .F16, [3, 5]), ("b", q40, [2, 64]), ("c", .I32, []), ("d", .BF16, [7])])
        let model = try GGUFReader.open(path)
        let a = model.tensor("a")!, b = model.tensor("b")!, c = model.tensor("c")!
        #expect(a.shape == [3, 5] && a.nbytes == 30 && a.elementCount == 15)
        #expect(b.type.name == "Q4_0" && b.shape == [2, 64] && b.nbytes == 2 * 2 * 18)
        #expect(c.shape == [] && c.elementCount == 1 && c.nbytes == 4)
        #expect(layout.alignment == 64)
        for (t, item) in zip(model.tensors, layout.items) {
            #expect(t.offset == layout.headerBytes.count + item.offset)
            #expect(t.offset % 64 == 0)
        }
        // The raw ne order in the file is innermost first: name "a", n_dims 2, ne = [5, 3].
        let bytes = try InputFile(path).read(at: 0, count: layout.headerBytes.count)
        let info: [UInt8] = [1, 0, 0, 0, 0, 0, 0, 0, UInt8(ascii: "a"), 2, 0, 0, 0,
                             5, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]
        let found = (0...(bytes.count - info.count)).contains { Array(bytes[$0..<$0 + info.count]) == info }
        #expect(found)
    }

    @Test func version2ReadsLikeVersion3() throws {
        let (path, _) = try writeFile(Self.everyValue, [("w", .F16, [4, 8])])
        var bytes = try InputFile(path).read(at: 0, count: InputFile(path).size)
        bytes[4] = 2  // the version field: v2 has v3's layout
        let v2 = try FormatTestSupport.tempFile(bytes, name: "v2.gguf")
        let a = try GGUFReader.open(path), b = try GGUFReader.open(v2)
        #expect(a.version == 3 && b.version == 2)
        #expect(a.metadata.map(\.0) == b.metadata.map(\.0))
        #expect(zip(a.metadata, b.metadata).allSatisfy { $0.1 == $1.1 })
        #expect(a.tensors.map(\.offset) == b.tensors.map(\.offset))
        bytes[4] = 1
        let v1 = try FormatTestSupport.tempFile(bytes, name: "v1.gguf")
        #expect(FormatTestSupport.errorCode { _ = try GGUFReader.open(v1) } == "gguf.unsupported-version")
    }

    @Test func writerRefusesWhatGGMLCannotLoad() {
        #expect(FormatTestSupport.errorCode { _ = try GGUFLayout(metadata: [], tensors: [(String(repeating: "x", count: 64), .F32, [1])]) } == "gguf.name-too-long")
        #expect(FormatTestSupport.errorCode { _ = try GGUFLayout(metadata: [], tensors: [("a", .F32, [1]), ("a", .F32, [1])]) } == "gguf.duplicate-tensor")
        #expect(FormatTestSupport.errorCode { _ = try GGUFLayout(metadata: [], tensors: [("a", .F32, [1, 1, 1, 1, 1])]) } == "gguf.too-many-dims")
        #expect(FormatTestSupport.errorCode { _ = try GGUFLayout(metadata: [("general.alignment", .u32(48))], tensors: []) } == "gguf.bad-alignment")
        #expect(FormatTestSupport.errorCode { _ = try GGUFLayout(metadata: [], tensors: [("q", GGMLType.known(2)!, [33])]) } == "gguf.bad-row-size")
    }

    @Test func splitSetIsReadAsOneModel() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ftq-split-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let parts: [[(name: String, type: GGMLType, shape: [Int])]] = [[("a", .F32, [4])], [("b", .F16, [2, 2]), ("c", .I8, [3])]]
        for (k, tensors) in parts.enumerated() {
            var meta: [(String, GGUFValue)] = k == 0 ? [("general.architecture", .string("llama"))] : []
            meta += [("split.no", .u16(UInt16(k))), ("split.count", .u16(2)), ("split.tensors.count", .i32(3))]
            let layout = try GGUFLayout(metadata: meta, tensors: tensors)
            var bytes = layout.headerBytes
            for item in layout.items { bytes += [UInt8](repeating: UInt8(k + 1), count: item.nbytes) + [UInt8](repeating: 0, count: item.padding) }
            FileManager.default.createFile(atPath: "\(dir)/m-0000\(k + 1)-of-00002.gguf", contents: Data(bytes))
        }
        for start in ["m-00001-of-00002.gguf", "m-00002-of-00002.gguf"] {
            let model = try ModelOpener.open("\(dir)/\(start)")
            #expect(model.tensors.map(\.name) == ["a", "b", "c"])
            #expect(model.files.count == 2)
            #expect(try model.read(model.tensor("c")!) == [2, 2, 2])
            #expect(model.metadata.first?.0 == "general.architecture")
        }
        try FileManager.default.removeItem(atPath: "\(dir)/m-00002-of-00002.gguf")
        #expect(FormatTestSupport.errorCode { _ = try ModelOpener.open("\(dir)/m-00001-of-00002.gguf") } == "gguf.split-missing")
    }

    @Test func splitNames() {
        let p = GGUFSplit.parseName("/x/Llama-3-8B-Q4_K_M-00002-of-00010.gguf")
        #expect(p?.prefix == "/x/Llama-3-8B-Q4_K_M" && p?.part == 2 && p?.count == 10)
        #expect(GGUFSplit.parseName("model.gguf") == nil)
        #expect(GGUFSplit.partName(prefix: "a", part: 3, count: 12) == "a-00003-of-00012.gguf")
    }

    @Test func everyTypeTableEntryIsConsistent() {
        #expect(Set(GGMLType.all.map(\.rawValue)).count == GGMLType.all.count)
        for t in GGMLType.all {
            #expect(GGMLType.known(t.rawValue) == t)
            #expect(GGMLType.removed[t.rawValue] == nil)
            #expect(t.blockSize >= 1 && t.typeSize >= 1)
        }
        // Spot checks against ggml's block structs.
        #expect(GGMLType.named("Q4_K")?.typeSize == 144)
        #expect(GGMLType.named("Q6_K")?.typeSize == 210)
        #expect(GGMLType.named("Q8_0")?.typeSize == 34)
        #expect(GGMLType.named("IQ4_XS")?.typeSize == 136)
    }
}
