import Foundation
import Testing
@testable import FTQCore
@testable import FTQFormats

@Suite struct SafetensorsTests {
    /// Builds a file from a header JSON text and a data section.
    static func file(_ header: String, data: [UInt8]) -> [UInt8] {
        var h = Array(header.utf8)
        var n = UInt64(h.count)
        var prefix: [UInt8] = []
        for _ in 0..<8 { prefix.append(UInt8(n & 0xff)); n >>= 8 }
        h = prefix + h
        return h + data
    }

    @Test func readsEveryDtypeZeroAndScalarTensors() throws {
        var header = "{\"__metadata__\":{\"format\":\"pt\",\"k\":\"v\"}"
        var offset = 0
        for d in DType.allCases {
            let count = d == .F4 ? 2 : d == .F6_E2M3 || d == .F6_E3M2 ? 4 : 1
            let n = d.byteCount(elements: count)!
            header += ",\"t_\(d.rawValue)\":{\"dtype\":\"\(d.rawValue)\",\"shape\":[\(count)],\"data_offsets\":[\(offset),\(offset + n)]}"
            offset += n
        }
        header += ",\"empty\":{\"dtype\":\"F32\",\"shape\":[0,7],\"data_offsets\":[\(offset),\(offset)]}"
        header += ",\"scalar\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[\(offset),\(offset + 4)]}}"
        offset += 4
        let path = try FormatTestSupport.tempFile(Self.file(header, data: (0..<offset).map { UInt8($0 & 0xff) }))
        let m = try SafetensorsFile.open(path)
        #expect(m.tensors.count == DType.allCases.count + 2)
        #expect(m.metadata.map(\.0) == ["format", "k"])
        #expect(m.tensor("empty")!.nbytes == 0 && m.tensor("empty")!.elementCount == 0)
        #expect(m.tensor("scalar")!.shape == [] && m.tensor("scalar")!.elementCount == 1)
        #expect(m.tensor("t_F6_E2M3")!.nbytes == 3)
        let headerLen = Array(header.utf8).count
        #expect(m.tensor("t_BOOL")!.offset == 8 + headerLen)
    }

    @Test func layoutMatchesReferenceOrderAndPadding() throws {
        // Same rule as the reference writer: descending dtype rank, then name bytes.
        let layout = try SafetensorsLayout(tensors: [
            ("b", .F16, [2, 3]), ("a", .I64, [3]), ("c", .BOOL, []), ("z", .F32, [0, 4]), ("e", .BF16, [3]),
        ], metadata: [("format", "pt")])
        #expect(layout.items.map(\.name) == ["a", "z", "e", "b", "c"])
        let text = String(decoding: layout.headerBytes[8...], as: UTF8.self)
        #expect(text.hasPrefix(#"{"__metadata__":{"format":"pt"},"a":{"dtype":"I64","shape":[3],"data_offsets":[0,24]},"z":{"dtype":"F32","shape":[0,4],"data_offsets":[24,24]}"#))
        #expect((layout.headerBytes.count - 8) % 8 == 0)
        #expect(text.hasSuffix("} ") || text.hasSuffix("}"))
        #expect(layout.fileSize == layout.headerBytes.count + 24 + 6 + 12 + 1)
        // An empty model is "{}" padded to 8 bytes.
        let empty = try SafetensorsLayout(tensors: [], metadata: nil)
        #expect(empty.headerBytes == [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8))
    }

    @Test func namesSortByUTF8Bytes() throws {
        // "Z" (0x5a) < "a" (0x61) < "é" (0xc3 0xa9): byte order, not locale order.
        let layout = try SafetensorsLayout(tensors: [("é", .F32, [1]), ("a", .F32, [1]), ("Z", .F32, [1])], metadata: nil)
        #expect(layout.items.map(\.name) == ["Z", "a", "é"])
    }

    @Test func shardPlanningFollowsHuggingFace() {
        #expect(Converter.planShards([4, 4, 4], maxShardSize: 8) == [[0, 1], [2]])
        #expect(Converter.planShards([10, 1, 1], maxShardSize: 8) == [[0], [1, 2]])
        // An oversized tensor becomes its own shard at once, before the shard being filled.
        #expect(Converter.planShards([1, 10, 1], maxShardSize: 8) == [[1], [0, 2]])
        #expect(Converter.planShards([6, 6, 2, 6, 2, 2], maxShardSize: 10) == [[0], [1, 2], [3, 4, 5]])
        #expect(Converter.planShards([], maxShardSize: 8) == [[]])
    }
}
