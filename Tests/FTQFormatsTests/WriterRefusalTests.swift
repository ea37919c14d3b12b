import Testing
@testable import FTQCore
@testable import FTQFormats

@Suite struct WriterRefusalTests {
    @Test func safetensorsWriterRefusals() {
        #expect(FormatTestSupport.errorCode { _ = try SafetensorsLayout(tensors: [("__metadata__", .F32, [1])], metadata: nil) } == "safetensors.reserved-name")
        #expect(FormatTestSupport.errorCode { _ = try SafetensorsLayout(tensors: [("", .F32, [1])], metadata: nil) } == "safetensors.empty-name")
        #expect(FormatTestSupport.errorCode { _ = try SafetensorsLayout(tensors: [("a", .F4, [3])], metadata: nil) } == "safetensors.partial-byte")
        #expect(FormatTestSupport.errorCode { _ = try SafetensorsLayout(tensors: [("a", .F64, [1 << 40, 1 << 22])], metadata: nil) } == "safetensors.size-overflow")
        #expect(FormatTestSupport.errorCode { _ = try SafetensorsLayout(tensors: [("a", .F32, [1]), ("a", .F16, [1])], metadata: nil) } == "model.duplicate-tensor")
    }

    @Test func nestedArraysDecodeWithoutMaterialisingInnerElements() {
        let inner = GGUFValue.array(.u32, (0..<1000).map { .u32($0) })
        let outer = GGUFArray(.array, [inner, .array(.u32, [])])
        let values = outer.values
        #expect(values.count == 2)
        if case let .array(a) = values[0] {
            #expect(a.count == 1000 && a.raw.count == 4000)
            #expect(a.prefix(2) == [.u32(0), .u32(1)])
        } else {
            Issue.record("not an array")
        }
    }

    @Test func byteExactAffixes() {
        #expect("model.safetensors".hasByteSuffix(".safetensors"))
        // "x" + U+0600 + ".safetensors": grapheme-wise the suffix check fails; byte-wise it holds.
        #expect("x\u{600}.safetensors".hasByteSuffix(".safetensors"))
        #expect("/\u{301}etc".hasBytePrefix("/"))
        #expect(!"ab".hasByteSuffix("xab"))
    }
}
