import FTQCore

/// Dequantizers of the K-quant families, by ggml type name (filled in as they land).
let kQuantKernels: [String: GGMLDequantizer.Kernel] = [:]
