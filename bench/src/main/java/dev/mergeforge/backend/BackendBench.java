package dev.mergeforge.backend;

import dev.mergeforge.backend.Backend.Axis;
import dev.mergeforge.backend.Backend.Rescale;
import dev.mergeforge.backend.ffm.NativeBackend;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Memory bandwidth of every hot Backend op on a 64 MB float32 tensor (16M elements), per backend.
 * Each benchmark declares the bytes it moves per call (reads + writes of whole tensors, counted
 * once) as its operations per invocation and reports per nanosecond, so <b>the score is GB/s</b>.
 * {@link #copy} (MemorySegment.copy of the same tensor) is the machine's bandwidth baseline.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(1)
public class BackendBench {
    /** Elements per tensor: 2^24 floats = 64 MB. */
    static final int N = 1 << 24;

    @Param({"java", "native"})
    public String backend;

    /** Worker threads; 0 means one per core. */
    @Param({"0"})
    public int threads;

    Arena arena;
    Backend b;
    Tile x, y, z, out, sign, pristine, importance;
    MemorySegment half, half2, halfOut, copyDst;
    TensorView bf16View, f16View, bf16View2;
    Tile s1, s2;

    @Setup(Level.Trial)
    public void setup() {
        b = switch (backend) {
            case "java" -> new JavaBackend(threads);
            case "native" -> new NativeBackend(threads);
            default -> throw new IllegalArgumentException("backend " + backend + ": use java or native");
        };
        arena = Arena.ofShared();
        Shape shape = Shape.of(N / 4096, 4096);
        x = random(shape, 1);
        y = random(shape, 2);
        z = random(shape, 3);
        out = random(shape, 4);
        sign = random(shape, 5);
        pristine = random(shape, 6);
        importance = random(Shape.of(4096), 7);
        half = arena.allocate(2L * N, 64);
        copyDst = arena.allocate(4L * N, 64);
        b.store(x, DType.BF16, half);
        bf16View = new TensorView("bench", DType.BF16, shape, half, "bench");
        f16View = new TensorView("bench", DType.F16, shape, half, "bench");
        b.electSign(List.of(x, y, z), sign);
        half2 = arena.allocate(2L * N, 64);
        halfOut = arena.allocate(2L * N, 64);
        b.store(y, DType.BF16, half2);
        bf16View2 = new TensorView("bench2", DType.BF16, shape, half2, "bench");
        s1 = random(shape, 8);
        s2 = random(shape, 9);
    }

    private Tile random(Shape shape, long seed) {
        MemorySegment s = arena.allocate(4L * N, 64);
        SplittableRandom r = new SplittableRandom(seed);
        for (long i = 0; i < N; i++) s.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) r.nextGaussian());
        return new Tile(s, shape);
    }

    /** In-place ops start every call from the same values. */
    @Setup(Level.Invocation)
    public void restore() { MemorySegment.copy(pristine.data(), 0, out.data(), 0, 4L * N); }

    @TearDown(Level.Trial)
    public void tearDown() {
        b.close();
        arena.close();
    }

    @Benchmark @OperationsPerInvocation(8 * N)
    public MemorySegment copy() { MemorySegment.copy(x.data(), 0, copyDst, 0, 4L * N); return copyDst; }

    @Benchmark @OperationsPerInvocation(6 * N)
    public Tile loadBf16() { b.load(bf16View, out); return out; }

    @Benchmark @OperationsPerInvocation(6 * N)
    public Tile loadF16() { b.load(f16View, out); return out; }

    @Benchmark @OperationsPerInvocation(6 * N)
    public MemorySegment storeBf16() { b.store(x, DType.BF16, half); return half; }

    @Benchmark @OperationsPerInvocation(6 * N)
    public MemorySegment storeF16() { b.store(x, DType.F16, half); return half; }

    @Benchmark @OperationsPerInvocation(12 * N)
    public Tile sub() { b.sub(x, y, out); return out; }

    @Benchmark @OperationsPerInvocation(12 * N)
    public Tile add() { b.add(x, y, out); return out; }

    @Benchmark @OperationsPerInvocation(8 * N)
    public Tile scale() { b.scale(x, 0.5f, out); return out; }

    @Benchmark @OperationsPerInvocation(12 * N)
    public Tile axpy() { b.axpy(0.01f, x, out); return out; }

    @Benchmark @OperationsPerInvocation(16 * N)
    public Tile weightedSum3() { b.weightedSum(List.of(x, y, z), new float[] {0.2f, 0.3f, 0.5f}, out); return out; }

    @Benchmark @OperationsPerInvocation(12 * N)
    public Tile lerp() { b.lerp(x, y, 0.3f, out); return out; }

    @Benchmark @OperationsPerInvocation(4 * N)
    public double sumAbs() { return b.sumAbs(x); }

    @Benchmark @OperationsPerInvocation(4 * N)
    public double sumSquares() { return b.sumSquares(x); }

    @Benchmark @OperationsPerInvocation(8 * N)
    public double dot() { return b.dot(x, y); }

    /** Top 20% by magnitude, in place (several passes; counted as one read and one write). */
    @Benchmark @OperationsPerInvocation(8 * N)
    public Tile keepTop20() { b.keepRankRange(out, 0, N / 5); return out; }

    @Benchmark @OperationsPerInvocation(8 * N)
    public Tile dropRescaleDensity() { b.dropRescale(out, 0.3f, 42L, Rescale.DENSITY); return out; }

    @Benchmark @OperationsPerInvocation(16 * N)
    public Tile electSign3() { b.electSign(List.of(x, y, z), out); return out; }

    @Benchmark @OperationsPerInvocation(20 * N)
    public Tile disjointMerge3() { b.disjointMerge(List.of(x, y, z), new float[] {1f, 1f, 1f}, sign, true, out); return out; }

    @Benchmark @OperationsPerInvocation(12 * N)
    public Tile relaxColumns() { b.relax(x, y, importance, 0.4f, Axis.COLUMNS, out); return out; }

    private static final Combination LINEAR2 = new Combination(new float[] {1f, 1f}, false, new float[] {0.5f});

    /**
     * A linear merge of two bf16 tensors into bf16 as the merger runs it: fused from the stored
     * bytes where the backend fuses (native), else load, weightedSum, scale and store on tiles
     * (java). Counted as the stored bytes: two bf16 reads and one bf16 write.
     */
    @Benchmark @OperationsPerInvocation(6 * N)
    public MemorySegment linearBf16x2() {
        List<TensorView> views = List.of(bf16View, bf16View2);
        if (b.fusesCombination(LINEAR2, views, null, DType.BF16)) {
            b.combineStored(LINEAR2, views, null, 0, DType.BF16, halfOut);
        } else {
            b.load(bf16View, s1);
            b.load(bf16View2, s2);
            LINEAR2.run(b, List.of(s1, s2), null, out);
            b.store(out, DType.BF16, halfOut);
        }
        return halfOut;
    }
}
