import Foundation
import Testing
import FTQCore
@testable import FTQFormats

/// The SentencePiece `tokenizer.model` reader (formats/llama-gguf.md, "Tokenizer") on the test
/// model of testdata/llama-vocab (trained by tools/interop/llama_vocab_peer.py train-spm).
@Suite struct SentencePieceModelTests {
    static let path = FormatTestSupport.testdata("llama-vocab/tokenizer.model")

    @Test func readsPiecesAndSettings() throws {
        let m = try SentencePieceModel.read(Self.path)
        #expect(m.pieces.count == 400)
        #expect(m.pieces[0] == .init(text: "<unk>", score: 0, type: .unknown))
        #expect(m.pieces[1].text == "<s>" && m.pieces[1].type == .control)
        #expect(m.pieces[3].text == "<ctl>" && m.pieces[3].type == .control)
        #expect(m.pieces[4].text == "<tool>" && m.pieces[4].type == .userDefined)
        #expect(m.pieces[5].text == "<0x00>" && m.pieces[5].type == .byte)
        #expect(m.pieces[261] == .init(text: "▁l", score: 0, type: .normal))
        #expect(m.pieces[300].score == -39 && m.pieces[300].type == .normal)
        #expect(m.modelType == .bpe && m.byteFallback && m.addDummyPrefix && m.normalizerName == "identity")
    }

    /// Every truncation and a flipped byte at every offset give a clean error or a model, never
    /// a crash or a read beyond the bytes.
    @Test func damagedModelsAreRefusedCleanly() throws {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.path)))
        var refused = 0
        for n in stride(from: 0, to: bytes.count, by: 7) {
            do { _ = try SentencePieceModel.parse(Array(bytes[..<n])) } catch is FTQError { refused += 1 }
        }
        #expect(refused > 0)
        for k in stride(from: 0, to: bytes.count, by: 5) {
            var b = bytes
            b[k] ^= 0xA5
            do { _ = try SentencePieceModel.parse(b) } catch let e as FTQError { #expect(e.code.hasPrefix("tokenizer.model")) }
        }
        // A length that runs past the end, and a group.
        #expect(throws: FTQError.self) { try SentencePieceModel.parse([0x0A, 0x7F, 0x0A]) }
        #expect(throws: FTQError.self) { try SentencePieceModel.parse([0x0B]) }
        #expect(throws: FTQError.self) { try SentencePieceModel.parse([]) }
    }
}
