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
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

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
 * <p>The two streams are real queues that complete <em>out of order</em>: every upload, zero,
 * launch and prefetch is queued on its stream, and after each call some ready operations run, so
 * the copy stream may run ahead of or behind the compute stream unless an event ({@link #await})
 * orders them. How they progress is a {@link StreamOrder}; devices take the three in turn (from
 * the seed), so a suite meets each; whatever the order, work that uses memory the other stream
 * also uses with no event or host wait between them fails when queued. {@link #download} and {@link #sync} run the
 * compute stream to its end (and the copy-stream work it waits for); {@link #free} and
 * {@link #close} run everything first, as cuMemFree synchronises. A kernel's failure is sticky and
 * surfaces at the next compute-stream call, as on a GPU. The seed is {@code -Dmergeforge.emu.seed}
 * (random when unset); it is printed once per JVM and named in every kernel failure. Bytes copied
 * each way are counted (the prefetching copy stream separately), to check what stays resident.
 */
public final class EmulatedDevice implements Device {
    /** Seed of the kernel interleavings and stream orders; printed in every emulator failure. */
    static final long SEED = Long.getLong("mergeforge.emu.seed", System.nanoTime() & 0xffffffffL);
    private static final java.util.concurrent.atomic.AtomicInteger DEVICES = new java.util.concurrent.atomic.AtomicInteger();
    private static final java.util.concurrent.atomic.AtomicBoolean SEED_SHOWN = new java.util.concurrent.atomic.AtomicBoolean();

    /** How the queued work of the two streams progresses between the calls that force it. */
    enum StreamOrder {
        /** after each call, a seeded random number of ready operations of either stream */
        RANDOM,
        /** compute work runs at once, the copy stream only when something waits for it: a missing wait for a prefetch shows */
        COPY_LAGS,
        /** copies run at once, compute work only when forced: a copy overwriting memory queued work still reads shows */
        COMPUTE_LAGS
    }
    private static Optional<String> buildError;
    private static Path library;

    private final Arena libArena = Arena.ofShared();
    private final MethodHandle launch;
    private final HostMemory memory = new HostMemory();
    private final AtomicLong toDevice = new AtomicLong(), prefetched = new AtomicLong(), toHost = new AtomicLong();
    private final Set<Event> liveEvents = ConcurrentHashMap.newKeySet();
    private final Queues queues;

    /**
     * An emulator library built elsewhere, used instead of building one: {@code -Dmergeforge.emu.lib=PATH}
     * (CudaEmulatedTsanTest's child JVM gets the ThreadSanitizer build this way).
     */
    static final String PREBUILT = System.getProperty("mergeforge.emu.lib");

    /** Builds the emulator once; empty when it is ready, else why not (no g++). A compile error fails the test. */
    public static synchronized Optional<String> unavailableReason() {
        if (buildError == null && PREBUILT != null) {
            library = Path.of(PREBUILT).toAbsolutePath();
            buildError = Files.isRegularFile(library) ? Optional.empty() : Optional.of("-Dmergeforge.emu.lib=" + PREBUILT + " does not exist");
        }
        if (buildError == null) {
            try {
                library = build(Path.of("kernels"), Path.of("target", "test-native", "libmfemu.so"));
                buildError = Optional.empty();
            } catch (IOException e) {
                buildError = Optional.of("g++ is not installed, so the kernels cannot be emulated on the host: " + e.getMessage());
            }
        }
        return buildError;
    }

    /**
     * Builds kernelsDir/host/mf_emulator.cpp (with the kernels beside it) into lib, with extra g++
     * arguments (-DMFEMU_SELECT_ONLY: only select.cu's kernels); a compile error fails the test.
     * Kept while the kernel tree, the flags and g++ are unchanged ({@link ToolCache}).
     */
    static Path build(Path kernelsDir, Path lib, String... extra) throws IOException {
        List<String> cmd = new ArrayList<>(List.of("g++", "-std=c++17", "-O1", "-shared", "-fPIC", "-ffp-contract=off"));
        cmd.addAll(List.of(extra));
        return gcc(cmd, kernelsDir.resolve("host/mf_emulator.cpp"), kernelsDir, lib);
    }

    /**
     * g++ with the arguments {@code cmd} on {@code source} into out, unless out was built by the same
     * command from the same files under {@code inputs} with the same g++; a compile error fails the test.
     */
    static Path gcc(List<String> cmd, Path source, Path inputs, Path out) throws IOException {
        Files.createDirectories(out.getParent());
        out = out.toAbsolutePath();
        cmd = new ArrayList<>(cmd);
        cmd.addAll(List.of("-o", out.toString(), source.toString()));
        String key = ToolCache.key(cmd, List.of(inputs));
        if (ToolCache.fresh(out, key)) return out;
        ToolCache.forget(out);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        try {
            if (!p.waitFor(180, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                Assertions.fail("g++ took over 180 s building " + source);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted building the kernel emulator", e);
        }
        String log = new String(p.getInputStream().readAllBytes());
        // a compile error in the kernels is a test failure, not a reason to skip
        Assertions.assertEquals(0, p.exitValue(), "g++ failed on " + source + ":\n" + log);
        ToolCache.remember(out, key);
        return out;
    }

    public EmulatedDevice() {
        this(requireLibrary());
    }

    EmulatedDevice(StreamOrder order) {
        this(requireLibrary(), order);
    }

    /** A device on an emulator library built by {@link #build} (the mutation test's mutants). */
    EmulatedDevice(Path lib) {
        this(lib, StreamOrder.values()[(int) Math.floorMod(SEED + DEVICES.getAndIncrement(), 3L)]);
    }

    EmulatedDevice(Path lib, StreamOrder order) {
        if (SEED_SHOWN.compareAndSet(false, true)) {
            System.out.println("EmulatedDevice: seed " + SEED + " (-Dmergeforge.emu.seed=" + SEED
                    + " repeats this run's kernel interleavings and stream orders)");
        }
        queues = new Queues(order);
        SymbolLookup l = SymbolLookup.libraryLookup(lib, libArena);
        Linker linker = Linker.nativeLinker();
        launch = linker.downcallHandle(l.find("emu_launch").orElseThrow(),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
        MethodHandle seed = linker.downcallHandle(l.find("emu_set_seed").orElseThrow(), FunctionDescriptor.ofVoid(JAVA_LONG));
        try {
            seed.invokeExact(SEED);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    static Path requireLibrary() {
        if (unavailableReason().isPresent()) throw new IllegalStateException(buildError.get());
        return library;
    }

    @Override public DeviceBuffer tryAllocate(long bytes) { return memory.allocate(bytes); }

    @Override
    public void free(DeviceBuffer b) {
        queues.drainAll();
        memory.free(b);
    }

    @Override
    public void upload(MemorySegment src, DeviceBuffer dst) {
        if (src.byteSize() > dst.capacity) throw new IllegalArgumentException(src.byteSize() + " bytes do not fit " + dst);
        byte[] staged = src.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        toDevice.addAndGet(src.byteSize());
        queues.enqueue(Stream.COMPUTE, "upload", List.of(dst), () -> HostMemory.upload(MemorySegment.ofArray(staged), dst));
    }

    @Override
    public void prefetchUpload(MemorySegment src, DeviceBuffer dst) {
        if (src.byteSize() > dst.capacity) throw new IllegalArgumentException(src.byteSize() + " bytes do not fit " + dst);
        byte[] staged = src.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE);
        toDevice.addAndGet(src.byteSize());
        prefetched.addAndGet(src.byteSize());
        queues.enqueue(Stream.COPY, "prefetch", List.of(dst), () -> HostMemory.upload(MemorySegment.ofArray(staged), dst));
    }

    @Override
    public void download(DeviceBuffer src, MemorySegment dst) {
        queues.hostRead(src);
        queues.drain(Stream.COMPUTE);
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
        Event e = queues.record(s);
        liveEvents.add(e);
        return e;
    }

    @Override
    public void await(Stream waiter, Event e) {
        if (!liveEvents.contains(e)) throw new IllegalStateException("wait on an event already destroyed");
        queues.await(waiter, (Mark) e);
    }

    @Override
    public void destroy(Event e) {
        if (!liveEvents.remove(e)) throw new IllegalStateException("event destroyed twice");
    }

    @Override
    public void zero(DeviceBuffer b, long bytes) { queues.enqueue(Stream.COMPUTE, "zero", List.of(b), () -> HostMemory.zero(b, bytes)); }

    @Override public void sync() { queues.drain(Stream.COMPUTE); }

    @Override public void makeCurrent() { }

    @Override public String describe() { return "host emulator of kernels/*.cu"; }

    @Override
    public void launch(Kernel k, long grid, int block, Object... args) {
        k.checkLaunch(block, args);
        if (grid < 1 || grid > Integer.MAX_VALUE) throw new IllegalArgumentException("grid of " + grid + " blocks for " + k.entry);
        Object[] values = args.clone();
        List<DeviceBuffer> buffers = new ArrayList<>();
        for (Object a : values) if (a instanceof DeviceBuffer b) buffers.add(b);
        queues.enqueue(Stream.COMPUTE, k.entry, buffers, () -> run(k, (int) grid, block, values));
    }

    private void run(Kernel k, int grid, int block, Object[] args) {
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
            MemorySegment err = call.allocate(1024);
            int rc = (int) launch.invokeExact(call.allocateFrom(k.entry), grid, block, params, err, 1024);
            if (rc != 0) throw new IllegalStateException("emulated " + err.getString(0) + "; rerun with -Dmergeforge.emu.seed=" + SEED);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    @Override
    public void close() {
        queues.drainAll();
        if (memory.outstanding() > 0) throw new IllegalStateException(memory.outstanding() + " emulated device buffers not freed");
        if (!liveEvents.isEmpty()) throw new IllegalStateException(liveEvents.size() + " emulated events not destroyed");
        libArena.close();
    }

    /** An event: the point after the first {@code count} operations queued on {@code stream}. */
    private static final class Mark implements Event {
        final Stream stream;
        final long count;

        Mark(Stream stream, long count) {
            this.stream = stream;
            this.count = count;
        }
    }

    /** One queued operation; a wait is ready once its mark's stream has run that far. */
    private record Op(String what, Mark waitFor, Runnable body) { }

    /** Device memory [from, to) used by the {@code pos}-th operation queued on {@code stream}. */
    private record Use(Stream stream, long pos, String what, long from, long to) { }

    /**
     * The two in-order queues, run in a seeded random interleaving that respects events. Work is
     * also checked when it is queued, whatever order it later runs in: an operation that uses
     * device memory which an operation of the other stream also uses, with no event or host wait
     * ordering the two, fails at once (every queued use may write: copies, zeroing, kernels).
     */
    private static final class Queues {
        private final List<ArrayDeque<Op>> q = List.of(new ArrayDeque<>(), new ArrayDeque<>());
        private final long[] queued = new long[2], done = new long[2];
        /** known[s][t]: every operation queued on s from now on follows the first known[s][t] of stream t */
        private final long[][] known = new long[2][2];
        private final List<Use> unordered = new ArrayList<>();
        private final SplittableRandom random = new SplittableRandom(SEED);
        private final StreamOrder order;
        private RuntimeException failure;

        Queues(StreamOrder order) { this.order = order; }

        synchronized void enqueue(Stream s, String what, List<DeviceBuffer> uses, Runnable body) {
            rethrow();
            for (DeviceBuffer b : uses) use(s, queued[s.ordinal()] + 1, what, b);
            add(s, new Op(what, null, body));
        }

        synchronized Mark record(Stream s) { return new Mark(s, queued[s.ordinal()]); }

        synchronized void await(Stream waiter, Mark m) {
            int w = waiter.ordinal(), t = m.stream.ordinal();
            if (w != t) known[w][t] = Math.max(known[w][t], m.count);
            settle();
            add(waiter, new Op("wait", m, () -> { }));
        }

        /** A download of b: it reads b after the compute stream's queued work. */
        synchronized void hostRead(DeviceBuffer b) { use(Stream.COMPUTE, queued[Stream.COMPUTE.ordinal()], "download", b); }

        /** Runs stream s to its end, and whatever it waits for; the host has then waited for all of s. */
        synchronized void drain(Stream s) {
            while (!q.get(s.ordinal()).isEmpty() && failure == null) step(s);
            rethrow();
            for (Stream t : Stream.values()) if (t != s) known[t.ordinal()][s.ordinal()] = queued[s.ordinal()];
            settle();
        }

        synchronized void drainAll() {
            drain(Stream.COPY);
            drain(Stream.COMPUTE);
        }

        private static Stream other(Stream s) { return s == Stream.COMPUTE ? Stream.COPY : Stream.COMPUTE; }

        private void use(Stream s, long pos, String what, DeviceBuffer b) {
            Stream o = other(s);
            for (Use u : unordered) {
                if (u.stream == o && u.pos > known[s.ordinal()][o.ordinal()] && u.from < b.address + b.capacity && b.address < u.to) {
                    throw new IllegalStateException("emulated streams: " + what + " on the " + s + " stream uses device memory that "
                            + u.what + " on the " + o + " stream also uses, and no event orders them (a missing Device.await, i.e. "
                            + "cuStreamWaitEvent)");
                }
            }
            unordered.add(new Use(s, pos, what, b.address, b.address + b.capacity));
        }

        /** Forgets uses the other stream is now ordered after. */
        private void settle() {
            unordered.removeIf(u -> u.pos <= known[other(u.stream).ordinal()][u.stream.ordinal()]);
        }

        private void add(Stream s, Op op) {
            q.get(s.ordinal()).add(op);
            queued[s.ordinal()]++;
            if (order != StreamOrder.RANDOM) {
                Stream eager = order == StreamOrder.COPY_LAGS ? Stream.COMPUTE : Stream.COPY;
                while (failure == null && ready(eager)) runHead(eager);
                return;
            }
            // a random amount of progress, on whichever streams can progress
            while (failure == null && random.nextInt(3) != 0) {
                List<Stream> ready = new ArrayList<>(2);
                for (Stream t : Stream.values()) if (ready(t)) ready.add(t);
                if (ready.isEmpty()) break;
                runHead(ready.get(random.nextInt(ready.size())));
            }
        }

        private boolean ready(Stream s) {
            Op head = q.get(s.ordinal()).peek();
            return head != null && (head.waitFor == null || done[head.waitFor.stream.ordinal()] >= head.waitFor.count);
        }

        /** Runs the head of s, or first what it waits for. */
        private void step(Stream s) {
            if (ready(s)) { runHead(s); return; }
            Stream other = s == Stream.COMPUTE ? Stream.COPY : Stream.COMPUTE;
            if (!ready(other)) throw new IllegalStateException("the emulated streams wait on each other: deadlock");
            runHead(other);
        }

        private void runHead(Stream s) {
            Op op = q.get(s.ordinal()).poll();
            try {
                op.body.run();
            } catch (RuntimeException e) {
                failure = e;
                q.forEach(ArrayDeque::clear);   // a failed kernel leaves the context unusable, as on a GPU
            }
            done[s.ordinal()]++;
        }

        /** The sticky failure, as a new exception each time (a caller may see it more than once). */
        private void rethrow() {
            if (failure != null) throw new IllegalStateException(failure.getMessage(), failure);
        }
    }
}
