package dev.mergeforge.cli;

import dev.mergeforge.api.BackendChoice;
import dev.mergeforge.backend.Backend;
import picocli.CommandLine.Option;

/** Shared options choosing where the numbers are crunched. */
final class BackendOptions {
    @Option(names = "--backend", defaultValue = "auto", paramLabel = "java|native|cuda|auto",
            description = "Compute backend (default: the fastest available, said in the log).")
    String backend;

    @Option(names = "--device", defaultValue = "cpu", paramLabel = "cpu|cuda[:N]",
            description = "Device for the cuda backend (cuda:N picks GPU N); cuda implies --backend cuda.")
    String device;

    @Option(names = "--threads", defaultValue = "0", description = "Worker threads (0 = one per core).")
    int threads;

    @Option(names = "--debug", description = "Print stack traces with errors.")
    boolean debug;

    Backend create() { return choice().create(); }

    BackendChoice choice() { return new BackendChoice(backend, device, threads); }
}
