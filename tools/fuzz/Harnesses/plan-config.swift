// libFuzzer harness: a Hugging Face config.json as `ftq plan CONFIG.json` reads it, and the
// estimates made from it with the default settings.
import FTQCore
import FTQPlan

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = input(data, size)
    expectCleanRejection {
        let config = try StrictJSON.parse(bytes)
        let model = try PlanModel(config: config)
        var settings = PlanSettings()
        settings.sequence = min(2048, model.architecture.maxPositions ?? 2048)
        _ = TrainingEstimator.estimate(model, settings)
        _ = InferenceEstimate(model, context: settings.sequence)
    }
    return 0
}
