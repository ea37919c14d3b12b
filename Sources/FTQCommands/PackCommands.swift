import ArgumentParser

/// The pack and unpack subcommands (compressed, checksummed bundles), registered with `ftq`.
let packSubcommands: [ParsableCommand.Type] = []
