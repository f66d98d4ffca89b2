package dev.mergeforge.api;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backends.Backends;
import dev.mergeforge.backend.cuda.CudaBackend;
import dev.mergeforge.errors.ConfigException;

/**
 * Where a merge's numbers are crunched: {@code backend} java, native, cuda or auto (the fastest
 * available); {@code device} cpu, cuda or cuda:N (cuda implies the cuda backend); {@code threads}
 * 0 for one per core; {@code deviceMemoryBytes} the device memory the cuda backend's chunked methods
 * may use ({@code --device-memory}, docs/cuda.md "Chunked methods"), 0 for its default. Validated
 * here; the backend's availability is checked by {@link #create()}.
 */
public record BackendChoice(String backend, String device, int threads, long deviceMemoryBytes) {
    public static final BackendChoice AUTO = new BackendChoice("auto", "cpu", 0);

    /** Without a device budget of its own (the cuda backend's default). */
    public BackendChoice(String backend, String device, int threads) { this(backend, device, threads, 0); }

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
        if (deviceMemoryBytes < 0) throw new ConfigException("--device-memory " + deviceMemoryBytes + ": must be positive (e.g. 8GB), or 0 for the default");
        if (deviceMemoryBytes > 0 && !device.startsWith("cuda") && !backend.equals("cuda") && !backend.equals("auto")) {
            throw new ConfigException("--device-memory sizes the cuda backend's GPU memory, but --backend is " + backend + "; drop --device-memory or use --backend cuda");
        }
    }

    /** The same choice with the cuda backend's device budget set ({@code --device-memory}; 0 for the default). */
    public BackendChoice withDeviceMemory(long bytes) { return new BackendChoice(backend, device, threads, bytes); }

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
        Backend b = Backends.create(name, threads, gpuIndex(device));
        if (deviceMemoryBytes == 0) return b;
        if (b instanceof CudaBackend cuda) {
            cuda.deviceMemory(deviceMemoryBytes);
            return b;
        }
        b.close();
        throw new ConfigException("--device-memory sizes the cuda backend's GPU memory, but --backend auto chose " + b.name()
                + " (no usable GPU here); drop --device-memory or use --backend cuda");
    }
}
