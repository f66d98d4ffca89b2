package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.ChunkOps;
import dev.mergeforge.backend.KarcherCases;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.java.JavaChunkOps;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Karcher's CUDA fused ops (kernels/karcher.cu) on the emulated device against the Java reference
 * and the separate ops they replace, bit for bit: every {@link KarcherCases} case (±0, subnormals,
 * quiet and signalling NaNs, ±∞, overflow, odd sizes), inputs on the device (as a chunk's loaded
 * tiles are) and on the host, units written over their inputs.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class CudaKarcherOpsTest {
    final Parallel par = new Parallel(2);
    final JavaChunkOps ref = new JavaChunkOps(par);
    CudaBackend backend;
    ChunkOps cuda;
    Arena arena;

    /** Why the device these tests run on is missing, if it is (the emulator here; a GPU in {@link a GPU run of the same checks}). */
    Optional<String> unavailable() { return EmulatedDevice.unavailableReason(); }

    CudaBackend open() { return new CudaBackend(new EmulatedDevice()); }

    @BeforeAll
    void openBackend() {
        if (unavailable().isPresent()) return;
        backend = open();
        cuda = backend.chunkOps().orElseThrow();
        arena = Arena.ofShared();
    }

    @AfterAll
    void close() {
        if (backend != null) backend.close();
        if (arena != null) arena.close();
        par.shutdown();
    }

    @BeforeEach
    void needDevice() { assumeTrue(unavailable().isEmpty(), () -> unavailable().orElse("")); }

    /** A native tile holding v, moved onto the device by an op (as a chunk's loaded tiles are). */
    Tile onDevice(int[] bits) {
        Tile t = KarcherCases.tile(arena, bits), ones = KarcherCases.tile(arena, new int[bits.length]);
        cuda.fill(ones, 1f);
        // a device op into the tile leaves it DEVICE_ONLY: x kept where 1 ≠ 0, every bit as it is
        cuda.keepWhereNonZero(t, ones, t);
        return t;
    }

    List<Tile> onDevice(int[][] bits, boolean device) {
        List<Tile> ts = new java.util.ArrayList<>();
        for (int[] b : bits) ts.add(device ? onDevice(b) : KarcherCases.tile(arena, b));
        return ts;
    }

    int[] read(Tile t) {
        int[][] out = new int[1][];
        cuda.onHost(List.of(t), List.of(), () -> out[0] = KarcherCases.bits(t));
        return out[0];
    }

    @Test
    void meanIsJavasBits() {
        for (KarcherCases.Case c : KarcherCases.cases()) {
            int[][] want = KarcherCases.separateMean(ref, arena, c);
            for (boolean device : new boolean[] {true, false}) {
                List<Tile> xs = onDevice(c.xs(), device);
                Tile u = KarcherCases.tile(arena, new int[c.n()]);
                cuda.karcherMean(xs, c.scales(), xs, c.w(), c.f(), u);
                String what = c + (device ? " on the device" : " from the host");
                for (int p = 0; p < xs.size(); p++) assertNull(KarcherCases.firstDifference(want[p], read(xs.get(p))), what + " unit " + p);
                assertNull(KarcherCases.firstDifference(want[xs.size()], read(u)), what + " u");
                Tile alone = KarcherCases.tile(arena, new int[c.n()]);
                cuda.karcherMean(onDevice(c.xs(), device), c.scales(), List.of(), c.w(), c.f(), alone);
                assertNull(KarcherCases.firstDifference(want[xs.size()], read(alone)), what + " u, units not kept");
            }
        }
    }

    @Test
    void tangentIsJavasBits() {
        for (KarcherCases.Case c : KarcherCases.cases()) {
            int[] want = KarcherCases.separateTangent(ref, arena, c);
            for (boolean device : new boolean[] {true, false}) {
                Tile t = KarcherCases.tile(arena, new int[c.n()]);
                Tile u = device ? onDevice(c.u()) : KarcherCases.tile(arena, c.u());
                cuda.karcherTangent(onDevice(c.xs(), device), u, c.minusCos(), c.coef(), t);
                assertNull(KarcherCases.firstDifference(want, read(t)), c + (device ? " on the device" : " from the host"));
            }
        }
    }

    @Test
    void tangentOfNoTermsIsPositiveZero() {
        Tile t = onDevice(new int[] {0x80000000, 0x7fc00000, 5});
        cuda.karcherTangent(List.of(), onDevice(new int[3]), new float[0], new float[0], t);
        assertEquals(List.of(0, 0, 0), java.util.Arrays.stream(read(t)).boxed().toList());
    }

    @Test
    void meanTangentIsJavasBits() {
        for (KarcherCases.Case c : KarcherCases.cases()) {
            for (int[] terms : KarcherCases.termChoices(c)) {
                int[] want = KarcherCases.separateMeanTangent(ref, arena, c, terms);
                for (boolean device : new boolean[] {true, false}) {
                    Tile t = KarcherCases.tile(arena, new int[c.n()]);
                    cuda.karcherMeanTangent(onDevice(c.xs(), device), c.scales(), c.w(), c.f(), terms, KarcherCases.pick(c.minusCos(), terms),
                            KarcherCases.pick(c.coef(), terms), t);
                    assertNull(KarcherCases.firstDifference(want, read(t)), c + " terms " + java.util.Arrays.toString(terms) + (device ? " on the device" : " from the host"));
                }
            }
        }
    }
}
