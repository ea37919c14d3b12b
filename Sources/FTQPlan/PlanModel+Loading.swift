import FTQCore
import FTQFormats

extension PlanModel {
    /// The largest config.json ftq reads (a real one is a few kilobytes).
    public static let maxConfigBytes = Limits.planConfigBytes

    /// Opens what `ftq plan` is given (formats/plan.md, "Inputs"): a config.json, a Hugging
    /// Face directory (config.json, with or without weights), a safetensors file (with the
    /// config.json beside it, if any) or a GGUF file. Only headers and the config are read.
    public static func load(_ path: String) throws -> PlanModel {
        switch PathKind.of(path) {
        case .missing:
            throw FTQError.io("io.not-found", file: path, "no such file or directory")
        case let .inaccessible(reason):
            throw FTQError.io("io.open", file: path, "cannot open: \(reason)")
        case let .other(kind):
            throw FTQError.invalid("input.not-regular-file", file: path, "not a regular file (\(kind))")
        case .directory:
            let configPath = joinPath(path, "config.json")
            let hasWeights = try listDirectory(path).contains { $0.hasByteSuffix(".safetensors") || $0.hasByteSuffix(".safetensors.index.json") }
            guard PathKind.of(configPath) == .regularFile else {
                guard hasWeights else {
                    throw FTQError.invalid("input.no-model", file: path, "no config.json and no .safetensors file in this directory")
                }
                return try PlanModel(header: ModelOpener.open(path))
            }
            let config = try readConfig(configPath)
            guard hasWeights else { return try withFile(configPath) { try PlanModel(config: config) } }
            let model = try ModelOpener.open(path)
            return try withFile(configPath) { try PlanModel(config: config, header: model) }
        case .regularFile:
            if path.hasByteSuffix(".json") && !path.hasByteSuffix(".safetensors.index.json") {
                let config = try readConfig(path)
                return try withFile(path) { try PlanModel(config: config) }
            }
            let model = try ModelOpener.open(path)
            if model.format == .safetensors {
                let configPath = joinPath(splitPath(path).dir, "config.json")
                if PathKind.of(configPath) == .regularFile {
                    let config = try readConfig(configPath)
                    return try withFile(configPath) { try PlanModel(config: config, header: model) }
                }
            }
            return try PlanModel(header: model)
        }
    }

    /// Reads and parses a config.json with the strict JSON parser.
    public static func readConfig(_ path: String) throws -> JSONValue {
        let f = try InputFile(path)
        guard f.size <= maxConfigBytes else {
            throw FTQError.invalid("plan.config", file: path, "\(f.size) bytes, over the \(maxConfigBytes)-byte cap for a config.json")
        }
        do {
            return try StrictJSON.parse(try f.read(at: 0, count: f.size))
        } catch let e as FTQError {
            throw e.inFile(path)
        }
    }

    static func withFile<T>(_ path: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as FTQError { throw e.inFile(path) }
    }
}
