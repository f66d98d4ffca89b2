package dev.mergeforge.backend.cuda;

import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.errors.MergeforgeException;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUevent;
import jcuda.driver.CUevent_flags;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.CUresult;
import jcuda.driver.CUstream;
import jcuda.driver.CUstream_flags;
import jcuda.driver.JCudaDriver;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;

/**
 * One GPU as the backend uses it, through JCuda: the device's primary context (shared with
 * cuBLAS), a compute stream every op is queued on (ordered with the legacy default stream, as
 * before) and a non-blocking copy stream for prefetching uploads, the PTX modules of the jar loaded with
 * cuModuleLoadData, and pinned staging for each stream. Owns all of them; {@link #close} unloads
 * and releases in reverse order. Events between the streams are cuEventRecord /
 * cuStreamWaitEvent, so neither stream blocks the host to wait for the other.
 */
public final class CudaContext implements Device {
    final int ordinal;
    final String deviceName;
    final long totalMemory;
    private final CUdevice device = new CUdevice();
    private final CUcontext context = new CUcontext();
    final StreamPtr stream = new StreamPtr();
    private final CUstream copyStream = new CUstream();
    private final List<CUmodule> modules = new ArrayList<>();
    private final Map<Kernel, CUfunction> functions = new EnumMap<>(Kernel.class);
    private boolean retained, streamCreated, copyStreamCreated;
    private PinnedStaging staging, copyStaging;

    public CudaContext(int ordinal) {
        this.ordinal = ordinal;
        CudaErrors.check(JCudaDriver.cuInit(0), "cuInit");
        int count = CudaAvailability.deviceCount();
        if (ordinal < 0 || ordinal >= count) {
            throw new ConfigException("--device cuda:" + ordinal + ": this machine has " + count + " GPU(s), use cuda:0 to cuda:" + (count - 1));
        }
        try {
            CudaErrors.check(JCudaDriver.cuDeviceGet(device, ordinal), "cuDeviceGet(" + ordinal + ")");
            CudaErrors.check(JCudaDriver.cuDevicePrimaryCtxRetain(context, device), "cuDevicePrimaryCtxRetain(cuda:" + ordinal + ")");
            retained = true;
            makeCurrent();
            CudaErrors.check(JCudaDriver.cuStreamCreate(stream, 0), "cuStreamCreate (compute)");
            streamCreated = true;
            CudaErrors.check(JCudaDriver.cuStreamCreate(copyStream, CUstream_flags.CU_STREAM_NON_BLOCKING), "cuStreamCreate (copy)");
            copyStreamCreated = true;
            byte[] name = new byte[256];
            CudaErrors.check(JCudaDriver.cuDeviceGetName(name, name.length, device), "cuDeviceGetName");
            int len = 0;
            while (len < name.length && name[len] != 0) len++;
            this.deviceName = new String(name, 0, len, StandardCharsets.US_ASCII);
            long[] mem = new long[1];
            CudaErrors.check(JCudaDriver.cuDeviceTotalMem(mem, device), "cuDeviceTotalMem");
            this.totalMemory = mem[0];
            loadModules();
            staging = new PinnedStaging(stream);
            copyStaging = new PinnedStaging(copyStream);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private void loadModules() {
        Map<String, CUmodule> byName = new LinkedHashMap<>();
        for (Kernel k : Kernel.values()) {
            CUmodule m = byName.get(k.module);
            if (m == null) {
                m = new CUmodule();
                CudaErrors.check(JCudaDriver.cuModuleLoadData(m, ptx(k.resource())), "cuModuleLoadData(" + k.resource() + ")");
                modules.add(m);
                byName.put(k.module, m);
            }
            CUfunction f = new CUfunction();
            CudaErrors.check(JCudaDriver.cuModuleGetFunction(f, m, k.entry), "cuModuleGetFunction(" + k.entry + " in " + k.resource() + ")");
            functions.put(k, f);
        }
    }

    /** The PTX text of a module, NUL-terminated as cuModuleLoadData wants it. */
    static byte[] ptx(String resource) {
        try (InputStream in = CudaContext.class.getResourceAsStream(resource)) {
            if (in == null) throw new MergeforgeException("CUDA kernels missing from the build (" + resource + "): rebuild with make build where nvcc is installed");
            byte[] text = in.readAllBytes();
            byte[] z = new byte[text.length + 1];
            System.arraycopy(text, 0, z, 0, text.length);
            return z;
        } catch (IOException e) {
            throw new MergeforgeException("cannot read " + resource + " from the jar: " + e.getMessage(), e);
        }
    }

    @Override
    public void makeCurrent() { CudaErrors.check(cuCtxSetCurrent(context), "cuCtxSetCurrent(cuda:" + ordinal + ")"); }

    @Override
    public long stream() { return stream.address(); }

    @Override
    public void sync() { CudaErrors.check(JCudaDriver.cuStreamSynchronize(stream), "cuStreamSynchronize (a kernel failed)"); }

    @Override
    public String describe() { return "cuda:" + ordinal + " (" + deviceName + ", " + (totalMemory >> 30) + " GiB)"; }

    @Override
    public DeviceBuffer tryAllocate(long bytes) {
        DevicePtr p = new DevicePtr();
        int rc = JCudaDriver.cuMemAlloc(p, bytes);
        if (rc == CUresult.CUDA_ERROR_OUT_OF_MEMORY) return null;
        CudaErrors.check(rc, "cuMemAlloc of " + bytes + " bytes");
        return new DeviceBuffer(p, bytes);
    }

    @Override
    public void free(DeviceBuffer b) {
        if (b.offset != 0) throw new IllegalArgumentException("free of a slice " + b);
        CudaErrors.check(JCudaDriver.cuMemFree(b.ptr), "cuMemFree");
    }

    /** Device memory free now (cuMemGetInfo), for sizing the calibration forward pass's buffers. */
    public long freeBytes() {
        long[] free = new long[1], total = new long[1];
        CudaErrors.check(JCudaDriver.cuMemGetInfo(free, total), "cuMemGetInfo");
        return free[0];
    }

    @Override
    public void upload(MemorySegment src, DeviceBuffer dst) { staging.upload(src, dst); }

    @Override
    public void prefetchUpload(MemorySegment src, DeviceBuffer dst) { copyStaging.upload(src, dst); }

    @Override
    public void download(DeviceBuffer src, MemorySegment dst) { staging.download(src, dst); }

    /** A JCuda event recorded on one of this context's streams. */
    private record CudaEvent(CUevent event) implements Event {}

    private CUstream streamOf(Stream s) {
        return switch (s) {
            case COMPUTE -> stream;
            case COPY -> copyStream;
        };
    }

    @Override
    public Event record(Stream s) {
        CUevent e = new CUevent();
        CudaErrors.check(JCudaDriver.cuEventCreate(e, CUevent_flags.CU_EVENT_DISABLE_TIMING), "cuEventCreate");
        int rc = JCudaDriver.cuEventRecord(e, streamOf(s));
        if (rc != CUresult.CUDA_SUCCESS) {
            JCudaDriver.cuEventDestroy(e);
            CudaErrors.check(rc, "cuEventRecord (" + s + " stream)");
        }
        return new CudaEvent(e);
    }

    @Override
    public void await(Stream waiter, Event e) {
        CudaErrors.check(JCudaDriver.cuStreamWaitEvent(streamOf(waiter), ((CudaEvent) e).event(), 0), "cuStreamWaitEvent (" + waiter + " stream)");
    }

    @Override
    public void destroy(Event e) { CudaErrors.check(JCudaDriver.cuEventDestroy(((CudaEvent) e).event()), "cuEventDestroy"); }

    @Override
    public void zero(DeviceBuffer b, long bytes) {
        CudaErrors.check(JCudaDriver.cuMemsetD8Async(b.ptr.withByteOffset(b.offset), (byte) 0, bytes, stream), "cuMemsetD8Async");
    }

    /**
     * Queues kernel k on the stream. Arguments in kernel order: DeviceBuffer (a pointer), Long
     * (long long), Integer (int or unsigned int bits), Float, Double.
     */
    @Override
    public void launch(Kernel k, long grid, int block, Object... args) {
        k.checkLaunch(block, args);
        Pointer[] params = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) {
            params[i] = switch (args[i]) {
                case DeviceBuffer b -> Pointer.to(new long[] {b.address});   // the pointer's value (slices too)
                case Long v -> Pointer.to(new long[] {v});
                case Integer v -> Pointer.to(new int[] {v});
                case Float v -> Pointer.to(new float[] {v});
                case Double v -> Pointer.to(new double[] {v});
                default -> throw new IllegalArgumentException("kernel argument " + i + " of " + k.entry + " has unsupported type " + args[i]);
            };
        }
        if (grid < 1 || grid > Integer.MAX_VALUE) throw new IllegalArgumentException("grid of " + grid + " blocks for " + k.entry);
        CudaErrors.check(JCudaDriver.cuLaunchKernel(functions.get(k), (int) grid, 1, 1, block, 1, 1, 0, stream,
                Pointer.to(params), null), "cuLaunchKernel(" + k.entry + ")");
    }

    @Override
    public void close() {
        // best effort: after a sticky CUDA error the context may refuse even this; release the rest anyway
        if (retained) JCudaDriver.cuCtxSetCurrent(context);
        // pinned buffers may still be read by queued copies: let both streams drain first
        if (streamCreated) JCudaDriver.cuStreamSynchronize(stream);
        if (copyStreamCreated) JCudaDriver.cuStreamSynchronize(copyStream);
        if (staging != null) staging.close();
        if (copyStaging != null) copyStaging.close();
        staging = null;
        copyStaging = null;
        for (CUmodule m : modules) JCudaDriver.cuModuleUnload(m);
        modules.clear();
        if (streamCreated) JCudaDriver.cuStreamDestroy(stream);
        if (copyStreamCreated) JCudaDriver.cuStreamDestroy(copyStream);
        streamCreated = false;
        copyStreamCreated = false;
        if (retained) JCudaDriver.cuDevicePrimaryCtxRelease(device);
        retained = false;
    }
}
