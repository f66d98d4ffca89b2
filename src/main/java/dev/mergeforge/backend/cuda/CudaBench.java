package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import jcuda.driver.CUevent;
import jcuda.driver.JCudaDriver;

import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Times every kernel on device-resident buffers and reports effective bandwidth (bytes the op
 * must read and write / time), then a few ops end to end through {@link CudaBackend} (host tile
 * in, host tile out) next to the Java backend. Needs a GPU; see docs/cuda.md.
 *
 * <pre>java -cp 'target/mergeforge.jar:target/lib/*' dev.mergeforge.backend.cuda.CudaBench [--device N] [--elements N] [--reps N]</pre>
 */
public final class CudaBench {
    private record Case(String name, double bytesPerElement, Runnable body) {}

    private CudaBench() {}

    public static void main(String[] args) {
        int device = 0, reps = 20;
        long n = 64L << 20;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--device" -> device = Integer.parseInt(args[++i]);
                case "--elements" -> n = Long.parseLong(args[++i]);
                case "--reps" -> reps = Integer.parseInt(args[++i]);
                default -> {
                    System.err.println("usage: CudaBench [--device N] [--elements N] [--reps N]");
                    System.exit(2);
                }
            }
        }
        PrintStream out = System.out;
        var why = CudaBackend.unavailableReason();
        if (why.isPresent()) {
            System.err.println("cannot benchmark: " + why.get());
            System.exit(1);
        }
        try (CudaBackend cuda = new CudaBackend(device)) {
            run(cuda, n, reps, out);
        }
    }

    /** Runs every case on the backend's device (a GPU, or the kernel emulator in the smoke test). */
    static void run(CudaBackend cuda, long n, int reps, PrintStream out) {
        try (Arena arena = Arena.ofConfined()) {
            out.printf(Locale.ROOT, "%s, %d elements (%.1f MiB per f32 tensor), %d reps%n", cuda.describe(), n, n * 4 / 1048576.0, reps);
            deviceKernels(cuda, n, reps, out, arena);
            endToEnd(cuda, n, out, arena);
        }
    }

    private static void deviceKernels(CudaBackend cuda, long n, int reps, PrintStream out, Arena arena) {
        DeviceOps ops = cuda.deviceOps();
        DeviceRankSelect rank = new DeviceRankSelect(ops);
        Tile host = randomTile(n, 1, arena);
        List<DeviceBuffer> held = new ArrayList<>();
        ops.dev.makeCurrent();
        Device st = ops.dev;
        try {
            DeviceBuffer a = upload(ops, st, host, held), b = upload(ops, st, randomTile(n, 2, arena), held);
            DeviceBuffer c = upload(ops, st, randomTile(n, 3, arena), held), o = borrow(ops, 4 * n, held);
            DeviceBuffer h16 = borrow(ops, 2 * n, held);
            DeviceBuffer ptrs = ops.pointerArray(List.of(a, b, c));
            DeviceBuffer w = ops.floatArray(new float[] {0.5f, 0.3f, 0.2f});
            held.add(ptrs);
            held.add(w);
            long cols = 4096;
            DeviceBuffer imp = upload(ops, st, randomTile(cols, 4, arena), held);
            List<Case> cases = List.of(
                    new Case("load_bf16", 6, () -> ops.load16(true, h16, o, n)),
                    new Case("store_bf16", 6, () -> ops.store16(true, a, h16, n)),
                    new Case("load_f16", 6, () -> ops.load16(false, h16, o, n)),
                    new Case("store_f16", 6, () -> ops.store16(false, a, h16, n)),
                    new Case("sub", 12, () -> ops.sub(a, b, o, n)),
                    new Case("add", 12, () -> ops.add(a, b, o, n)),
                    new Case("scale", 8, () -> ops.scale(a, 0.5f, o, n)),
                    new Case("axpy", 12, () -> ops.axpy(1e-3f, a, o, n)),
                    new Case("lerp", 12, () -> ops.lerp(a, b, 0.25f, o, n)),
                    new Case("weightedSum(3)", 16, () -> ops.weightedSum(ptrs, w, 3, o, n)),
                    new Case("sumAbs", 4, () -> ops.sumAbs(a, n)),
                    new Case("sumSquares", 4, () -> ops.sumSquares(a, n)),
                    new Case("dot", 8, () -> ops.dot(a, b, n)),
                    new Case("philoxDrop", 8, () -> ops.philoxDrop(o, n, 42L, 1L << 23)),
                    new Case("electSign(3)", 16, () -> ops.electSign(ptrs, 3, o, n)),
                    new Case("disjointMerge(3)", 20, () -> ops.disjointMerge(ptrs, w, 3, c, true, o, n)),
                    new Case("relax(COLUMNS)", 12, () -> ops.relax(a, b, imp, 0.3f, Backend.Axis.COLUMNS, cols, o, n)),
                    // sub (12) + 3 histogram passes (12) + tie counts (4) + mask (8) bytes per element
                    new Case("sub+keepRankRange(20%)", 36, () -> {
                        ops.sub(a, b, o, n); // fresh input each time (the op is in place)
                        rank.keepRankRange(o, n, 0, n / 5);
                    }));
            out.println(String.format(Locale.ROOT, "%-24s %10s %10s", "kernel", "ms/op", "GB/s"));
            for (Case k : cases) {
                double ms = time(ops, k.body, reps);
                out.println(String.format(Locale.ROOT, "%-24s %10.3f %10.1f", k.name, ms, k.bytesPerElement * n / (ms * 1e6)));
            }
        } finally {
            ops.dev.sync();
            for (DeviceBuffer d : held) ops.pool.release(d);
        }
    }

    /** Milliseconds per run, measured with CUDA events (wall clock off a GPU) around reps runs after 2 warm-up runs. */
    private static double time(DeviceOps ops, Runnable body, int reps) {
        body.run();
        body.run();
        if (!(ops.dev instanceof CudaContext cx)) {
            long t0 = System.nanoTime();
            for (int r = 0; r < reps; r++) body.run();
            ops.dev.sync();
            return (System.nanoTime() - t0) / 1e6 / reps;
        }
        CUevent start = new CUevent(), stop = new CUevent();
        CudaErrors.check(JCudaDriver.cuEventCreate(start, 0), "cuEventCreate");
        CudaErrors.check(JCudaDriver.cuEventCreate(stop, 0), "cuEventCreate");
        try {
            CudaErrors.check(JCudaDriver.cuEventRecord(start, cx.stream), "cuEventRecord");
            for (int r = 0; r < reps; r++) body.run();
            CudaErrors.check(JCudaDriver.cuEventRecord(stop, cx.stream), "cuEventRecord");
            CudaErrors.check(JCudaDriver.cuEventSynchronize(stop), "cuEventSynchronize");
            float[] ms = new float[1];
            CudaErrors.check(JCudaDriver.cuEventElapsedTime(ms, start, stop), "cuEventElapsedTime");
            return ms[0] / reps;
        } finally {
            JCudaDriver.cuEventDestroy(start);
            JCudaDriver.cuEventDestroy(stop);
        }
    }

    /**
     * sub and keepRankRange on pool-like (native) tiles next to the Java backend: "host" rows bring
     * every tile back to host memory after each run (what every op paid before residency: inputs
     * up, result down), "resident" rows leave them on the device.
     */
    private static void endToEnd(CudaBackend cuda, long n, PrintStream out, Arena arena) {
        Tile a = randomTile(n, 5, arena), b = randomTile(n, 6, arena), o = new Tile(arena.allocate(4 * n, 64), Shape.of(n));
        try (JavaBackend java = new JavaBackend()) {
            out.println(String.format(Locale.ROOT, "%-24s %12s %12s %12s", "end to end", "cuda host", "cuda resident", "java ms"));
            for (Backend be : List.of(cuda, java)) be.sub(a, b, o); // warm-up
            cuda.hostAccess(a, b, o);
            double ch = wall(() -> { cuda.sub(a, b, o); cuda.hostAccess(a, b, o); });
            cuda.sub(a, b, o);
            double cr = wall(() -> cuda.sub(a, b, o)), js = wall(() -> java.sub(a, b, o));
            out.println(String.format(Locale.ROOT, "%-24s %12.1f %12.1f %12.1f", "sub", ch, cr, js));
            cuda.hostAccess(a, b, o);
            double kh = wall(() -> { cuda.sub(a, b, o); cuda.keepRankRange(o, 0, n / 5); cuda.hostAccess(a, b, o); });
            cuda.sub(a, b, o);
            double kr = wall(() -> { cuda.sub(a, b, o); cuda.keepRankRange(o, 0, n / 5); });
            cuda.hostAccess(a, b, o);
            double jk = wall(() -> { java.sub(a, b, o); java.keepRankRange(o, 0, n / 5); });
            out.println(String.format(Locale.ROOT, "%-24s %12.1f %12.1f %12.1f", "sub + keepRankRange", kh, kr, jk));
        }
    }

    private static double wall(Runnable r) {
        long t0 = System.nanoTime();
        r.run();
        return (System.nanoTime() - t0) / 1e6;
    }

    private static DeviceBuffer upload(DeviceOps ops, Device st, Tile t, List<DeviceBuffer> held) {
        DeviceBuffer d = borrow(ops, t.data().byteSize(), held);
        st.upload(t.data(), d);
        return d;
    }

    private static DeviceBuffer borrow(DeviceOps ops, long bytes, List<DeviceBuffer> held) {
        DeviceBuffer d = ops.pool.borrow(bytes, "benchmark buffer");
        held.add(d);
        return d;
    }

    private static Tile randomTile(long n, long seed, Arena arena) {
        MemorySegment s = arena.allocate(4 * n, 64);
        SplittableRandom r = new SplittableRandom(seed);
        for (long i = 0; i < n; i++) s.setAtIndex(Tile.F32, i, (float) (r.nextGaussian() * 0.02));
        return new Tile(s, Shape.of(n));
    }
}
