package dev.mergeforge.backend.cuda;

import org.junit.jupiter.api.Assertions;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.TimeUnit;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * A {@link Device} that runs the real kernel sources (kernels/*.cu) on the CPU through
 * kernels/host/mf_emulator.cpp, built here with g++ and called with cuLaunchKernel's parameter
 * convention. Device memory is {@link HostMemory}, filled with 0xA5 garbage when allocated so that a
 * kernel reading bytes nobody wrote shows up as a mismatch.
 *
 * <p>Everything runs at once in call order, so both streams and their events are trivially
 * satisfied; the events are still counted so a test can check that every one is destroyed. Bytes
 * copied each way are counted (the prefetching copy stream separately), to check what stays resident.
 */
final class EmulatedDevice implements Device {
    private static Optional<String> buildError;
    private static Path library;

    private final Arena libArena = Arena.ofShared();
    private final MethodHandle launch;
    private final HostMemory memory = new HostMemory();
    private final AtomicLong toDevice = new AtomicLong(), prefetched = new AtomicLong(), toHost = new AtomicLong();
    private final Set<Event> liveEvents = ConcurrentHashMap.newKeySet();

    /** Builds the emulator once; empty when it is ready, else why not (no g++, compile error). */
    static synchronized Optional<String> unavailableReason() {
        if (buildError == null) buildError = build();
        return buildError;
    }

    private static Optional<String> build() {
        try {
            Path out = Path.of("target", "test-native");
            Files.createDirectories(out);
            Path lib = out.resolve("libmfemu.so").toAbsolutePath();
            Process p = new ProcessBuilder("g++", "-std=c++17", "-O0", "-shared", "-fPIC", "-ffp-contract=off",
                    "-o", lib.toString(), "kernels/host/mf_emulator.cpp").redirectErrorStream(true).start();
            if (!p.waitFor(120, TimeUnit.SECONDS)) return Optional.of("g++ timed out building the kernel emulator");
            String log = new String(p.getInputStream().readAllBytes());
            // a compile error in the kernels is a test failure, not a reason to skip
            Assertions.assertEquals(0, p.exitValue(), "g++ failed on kernels/host/mf_emulator.cpp:\n" + log);
            library = lib;
            return Optional.empty();
        } catch (IOException e) {
            return Optional.of("g++ is not installed, so the kernels cannot be emulated on the host: " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Optional.of("interrupted building the kernel emulator");
        }
    }

    EmulatedDevice() {
        if (unavailableReason().isPresent()) throw new IllegalStateException(buildError.get());
        SymbolLookup l = SymbolLookup.libraryLookup(library, libArena);
        launch = Linker.nativeLinker().downcallHandle(l.find("emu_launch").orElseThrow(),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
    }

    @Override public DeviceBuffer tryAllocate(long bytes) { return memory.allocate(bytes); }

    @Override public void free(DeviceBuffer b) { memory.free(b); }

    @Override
    public void upload(MemorySegment src, DeviceBuffer dst) {
        HostMemory.upload(src, dst);
        toDevice.addAndGet(src.byteSize());
    }

    @Override
    public void prefetchUpload(MemorySegment src, DeviceBuffer dst) {
        upload(src, dst);
        prefetched.addAndGet(src.byteSize());
    }

    @Override
    public void download(DeviceBuffer src, MemorySegment dst) {
        HostMemory.download(src, dst);
        toHost.addAndGet(dst.byteSize());
    }

    /** Bytes copied host to device on either stream, on the copy stream only, and device to host, since the last reset. */
    long bytesToDevice() { return toDevice.get(); }

    long bytesPrefetched() { return prefetched.get(); }

    long bytesToHost() { return toHost.get(); }

    void resetCounts() {
        toDevice.set(0);
        prefetched.set(0);
        toHost.set(0);
    }

    /** Events recorded and not yet destroyed. */
    int liveEvents() { return liveEvents.size(); }

    @Override
    public Event record(Stream s) {
        Event e = new Event() { };
        liveEvents.add(e);
        return e;
    }

    @Override
    public void await(Stream waiter, Event e) {
        if (!liveEvents.contains(e)) throw new IllegalStateException("wait on an event already destroyed");
    }

    @Override
    public void destroy(Event e) {
        if (!liveEvents.remove(e)) throw new IllegalStateException("event destroyed twice");
    }

    @Override
    public void zero(DeviceBuffer b, long bytes) { HostMemory.zero(b, bytes); }

    @Override public void sync() { }

    @Override public void makeCurrent() { }

    @Override public String describe() { return "host emulator of kernels/*.cu"; }

    @Override
    public void launch(Kernel k, long grid, int block, Object... args) {
        k.checkArgs(args);
        if (grid < 1 || grid > Integer.MAX_VALUE) throw new IllegalArgumentException("grid of " + grid + " blocks for " + k.entry);
        try (Arena call = Arena.ofConfined()) {
            MemorySegment params = call.allocate(ADDRESS, args.length);
            for (int i = 0; i < args.length; i++) {
                MemorySegment v = call.allocate(8, 8);
                switch (args[i]) {
                    case DeviceBuffer b -> v.set(JAVA_LONG, 0, b.address);
                    case Long x -> v.set(JAVA_LONG, 0, x);
                    case Integer x -> v.set(JAVA_INT, 0, x);
                    case Float x -> v.set(JAVA_FLOAT, 0, x);
                    case Double x -> v.set(JAVA_DOUBLE, 0, x);
                    default -> throw new IllegalArgumentException("argument " + args[i]);
                }
                params.setAtIndex(ADDRESS, i, v);
            }
            MemorySegment err = call.allocate(256);
            int rc = (int) launch.invokeExact(call.allocateFrom(k.entry), (int) grid, block, params, err, 256);
            if (rc != 0) throw new IllegalStateException("emulated " + k.entry + ": " + err.getString(0));
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    @Override
    public void close() {
        if (memory.outstanding() > 0) throw new IllegalStateException(memory.outstanding() + " emulated device buffers not freed");
        if (!liveEvents.isEmpty()) throw new IllegalStateException(liveEvents.size() + " emulated events not destroyed");
        libArena.close();
    }
}
