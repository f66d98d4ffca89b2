package dev.mergeforge.api;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backends.Backends;
import dev.mergeforge.errors.ConfigException;

/**
 * Where a merge's numbers are crunched: {@code backend} java, native, cuda or auto (the fastest
 * available); {@code device} cpu, cuda or cuda:N (cuda implies the cuda backend); {@code threads}
 * 0 for one per core. Validated here; the backend's availability is checked by {@link #create()}.
 */
public record BackendChoice(String backend, String device, int threads) {
    public static final BackendChoice AUTO = new BackendChoice("auto", "cpu", 0);

    public BackendChoice {
        if (backend == null || device == null) throw new ConfigException("backend and device must be given (e.g. auto and cpu)");
        if (device.startsWith("cuda")) {
            if (!backend.equals("auto") && !backend.equals("cuda")) {
                throw new ConfigException("--device " + device + " needs --backend cuda (got --backend " + backend + ")");
            }
            gpuIndex(device);
        } else if (!device.equals("cpu")) {
            throw new ConfigException("--device " + device + ": expected cpu, cuda or cuda:N");
        }
        if (threads < 0) throw new ConfigException("--threads " + threads + ": must be 0 (one thread per core) or a positive thread count");
    }

    private static int gpuIndex(String device) {
        if (!device.startsWith("cuda:")) return 0;
        try {
            return Integer.parseInt(device.substring(5));
        } catch (NumberFormatException e) {
            throw new ConfigException("--device " + device + ": expected cuda or cuda:N with N a GPU index");
        }
    }

    /** Opens the backend (an error naming the reason if it is unavailable; never a silent fallback). */
    public Backend create() {
        String name = device.startsWith("cuda") ? "cuda" : backend;
        return Backends.create(name, threads, gpuIndex(device));
    }
}
