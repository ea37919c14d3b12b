import ArgumentParser

/// Options every command that writes files takes.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Replace an existing output.")
    var force = false

    @Flag(name: [.short, .long], help: "No progress on stderr.")
    var quiet = false
}
