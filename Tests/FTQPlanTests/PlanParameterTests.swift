import Foundation
import Testing
import FTQCore
import FTQFormats
import FTQPlan

/// Parameter counts from config.json against the counts the models' publishers print, and
/// counts from real headers against counts from the same models' configs.
struct PlanParameterTests {
    /// Published parameter counts (transformers' `num_parameters()` / the model cards; StarCoder's
    /// from the "personal copilot" post's PEFT printout: all 15,627,884,544 less 110,428,160
    /// trainable).
    static let published: [(String, Int)] = [
        ("llama-2-7b", 6_738_415_616),
        ("mistral-7b", 7_241_732_096),
        ("llama-3.1-8b", 8_030_261_248),
        ("llama-3.1-70b", 70_553_706_496),
        ("starcoder", 15_517_456_384),
        ("gpt2", 124_439_808),
        ("t5-small", 60_506_624),
        ("flan-t5-base", 247_577_856),
        ("qwen2-0.5b", 494_032_768),
    ]

    @Test(arguments: published)
    func countFromConfig(_ name: String, _ expected: Int) throws {
        let m = try PlanTestSupport.published(name)
        #expect(m.parameterCount == expected, "\(name)")
        #expect(m.architecture.source == .config)
        #expect(m.headerParameters == nil)
    }

    /// LoRA adapter sizes that PEFT prints for well-known setups.
    @Test func loraTrainableCounts() throws {
        // PEFT on Llama 2 7B, r = 8 on q_proj and v_proj: "trainable params: 4,194,304".
        var s = PlanSettings()
        s.method = .lora
        s.loraTargets = [.q, .v]
        let llama = try PlanTestSupport.published("llama-2-7b")
        #expect(TrainingEstimator.estimate(llama, s).trainableParameters == 4_194_304)
        // StarCoder, r = 32 on c_attn, c_proj (both), c_fc: 110,428,160 (the personal copilot post).
        s.method = .qlora
        s.loraRank = 32
        s.loraTargets = [.q, .k, .v, .o, .up, .down]
        let starcoder = try PlanTestSupport.published("starcoder")
        #expect(TrainingEstimator.estimate(starcoder, s).trainableParameters == 110_428_160)
    }

    /// A Llama-shaped safetensors model with its config.json: the header's count (BF16 only)
    /// equals the config's, tensor for tensor.
    @Test func headerMatchesConfigLlama() throws {
        let dir = PlanTestSupport.testdata("golden/peft/qbase-bf16")
        let m = try PlanModel.load(dir)
        #expect(m.architecture.source == .config)
        let header = try #require(m.headerParameters)
        #expect(header.map(\.dtype) == ["BF16"])
        #expect(m.headerParameterCount == m.parameterCount)
        #expect(m.notes.isEmpty)
        // Same names and shapes as the file holds.
        let model = try ModelOpener.open(dir)
        let fromFile = Dictionary(uniqueKeysWithValues: model.tensors.map { ($0.name, $0.shape) })
        let fromConfig = Dictionary(uniqueKeysWithValues: m.tensors.map { ($0.name, $0.shape) })
        #expect(fromFile == fromConfig)
    }

    /// GPT-2 (Conv1D weights, tied head, learned positions): header and config agree.
    @Test func headerMatchesConfigGPT2() throws {
        let m = try PlanModel.load(PlanTestSupport.testdata("golden/peft/gpt2-base"))
        #expect(m.headerParameterCount == m.parameterCount)
        #expect(m.notes.isEmpty)
    }

    /// Without config.json the architecture is inferred from the names and shapes, and gives
    /// the same tensors, count and architecture as the config (except what shapes cannot say).
    @Test func inferredMatchesConfig() throws {
        let src = PlanTestSupport.testdata("golden/peft/qbase-bf16")
        let withConfig = try PlanModel.load(src)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ftq-plan-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.copyItem(atPath: src + "/model.safetensors", toPath: dir + "/model.safetensors")
        for path in [dir, dir + "/model.safetensors"] {
            let inferred = try PlanModel.load(path)
            #expect(inferred.architecture.source == .tensorNames)
            #expect(inferred.parameterCount == withConfig.parameterCount)
            #expect(inferred.headerParameterCount == withConfig.parameterCount)
            let a = inferred.architecture, c = withConfig.architecture
            let dims: [Int] = [a.hidden, a.layers, a.queryDim, a.kvDim, a.intermediate, a.vocab]
            let expected: [Int] = [c.hidden, c.layers, c.queryDim, c.kvDim, c.intermediate, c.vocab]
            #expect(dims == expected)
            #expect(a.tiedEmbeddings == c.tiedEmbeddings && a.gatedMLP == c.gatedMLP)
            #expect(inferred.notes.contains { $0.contains("inferred") })
            // The same roles, so the same estimates.
            var s = PlanSettings()
            s.method = .qlora
            s.sequence = 64
            s.flashAttention = true
            #expect(TrainingEstimator.estimate(inferred, s).bytes("weights") == TrainingEstimator.estimate(withConfig, s).bytes("weights"))
            #expect(TrainingEstimator.estimate(inferred, s).trainableParameters == TrainingEstimator.estimate(withConfig, s).trainableParameters)
        }
    }

    /// A GGUF file quantized by llama.cpp (Q4_0 and Q6_K tensors): element counts come from the
    /// header whatever the type, and the architecture from its metadata.
    @Test func ggufHeader() throws {
        let m = try PlanModel.load(PlanTestSupport.testdata("llamacpp/tiny-llama-Q4_0.gguf"))
        // testdata/llamacpp/README.md: 21 tensors, 869632 parameters.
        #expect(m.parameterCount == 869_632)
        #expect(m.headerParameterCount == 869_632)
        let a = m.architecture
        #expect(a.source == .ggufMetadata)
        let dims: [Int] = [a.hidden, a.layers, a.heads, a.kvHeads, a.headDim, a.intermediate, a.vocab]
        #expect(dims == [256, 2, 4, 2, 64, 288, 64])
        #expect(a.maxPositions == 256)
        #expect(a.gatedMLP && !a.tiedEmbeddings)
        #expect(m.tensors.filter { $0.linearKind != nil }.count == 14)
    }

    @Test func invalidConfigs() throws {
        func code(_ text: String) -> String? {
            do { _ = try PlanModel(config: try StrictJSON.parse(Array(text.utf8))); return nil } catch {
                return (error as? FTQError).map { "\($0.code): \($0.message)" } ?? "\(error)"
            }
        }
        let missing = code(#"{"model_type": "llama", "num_hidden_layers": 2}"#)
        #expect(missing?.hasPrefix("plan.config") == true && missing?.contains("hidden_size") == true)
        let unknown = code(#"{"model_type": "bert"}"#)
        #expect(unknown?.contains("model_type \"bert\"") == true)
        let negative = code(#"{"model_type": "gpt2", "n_embd": -768, "n_head": 12, "n_layer": 12, "n_positions": 1024, "vocab_size": 50257}"#)
        #expect(negative?.contains("\"n_embd\" must be a positive integer") == true)
        let heads = code(#"{"model_type": "mistral", "hidden_size": 4096, "num_attention_heads": 32, "num_key_value_heads": 5, "num_hidden_layers": 2, "intermediate_size": 8, "vocab_size": 8}"#)
        #expect(heads?.contains("num_key_value_heads") == true)
        #expect(code("[1]")?.hasPrefix("plan.config") == true)
    }
}
