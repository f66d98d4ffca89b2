package dev.mergeforge.cli;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.Backends;
import dev.mergeforge.errors.ConfigException;
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

    Backend create() {
        String name = backend;
        int index = 0;
        if (device.startsWith("cuda")) {
            if (!name.equals("auto") && !name.equals("cuda")) {
                throw new ConfigException("--device " + device + " needs --backend cuda (got --backend " + backend + ")");
            }
            name = "cuda";
            if (device.startsWith("cuda:")) {
                try {
                    index = Integer.parseInt(device.substring(5));
                } catch (NumberFormatException e) {
                    throw new ConfigException("--device " + device + ": expected cuda or cuda:N with N a GPU index");
                }
            }
        } else if (!device.equals("cpu")) {
            throw new ConfigException("--device " + device + ": expected cpu, cuda or cuda:N");
        }
        if (threads < 0) throw new ConfigException("--threads " + threads + ": must be 0 (one thread per core) or a positive thread count");
        return Backends.create(name, threads, index);
    }
}
