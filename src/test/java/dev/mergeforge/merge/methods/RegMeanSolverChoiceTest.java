package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.DenseSolver;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.linalg.Cholesky;
import dev.mergeforge.linalg.CpuDenseSolver;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.Params;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import dev.mergeforge.tensor.TilePool;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Which solver RegMean uses and what happens when a device solver says "not positive definite",
 * with fake device solvers in place of cuSOLVER (CudaDenseSolverGpuTest runs the real one).
 */
class RegMeanSolverChoiceTest {
    static final Parallel ONE = new Parallel(1);
    static final JavaBackend CPU = new JavaBackend(1);
    static final int OUT = 6, IN = 11;

    @AfterAll static void close() { CPU.close(); ONE.shutdown(); }

    /** A CPU backend that offers {@code solver} as its device solver, as CudaBackend offers cuSOLVER. */
    static Backend withDevice(DenseSolver solver) {
        return new JavaBackend(1) {
            @Override public Optional<DenseSolver> denseSolver() { return Optional.of(solver); }
        };
    }

    /** A device solver that runs the CPU kernels and counts its calls. */
    static final class Counting implements DenseSolver {
        int products, solves;
        @Override public String name() { return "fake device"; }
        @Override public void addProduct(double s, double[] mat, int n, double[] x, double[] c, int m) {
            products++;
            new CpuDenseSolver(ONE).addProduct(s, mat, n, x, c, m);
        }
        @Override public int trySolve(double[] a, int n, double tol, double[] b, int m) {
            solves++;
            return new CpuDenseSolver(ONE).trySolve(a, n, tol, b, m);
        }
    }

    /** A device solver that factors on a copy and reports the first failing pivot (as devInfo would), never touching b; -1 would mean it solved. */
    static final class Refusing implements DenseSolver {
        final int forcedPivot;
        Refusing(int forcedPivot) { this.forcedPivot = forcedPivot; }
        @Override public String name() { return "fake device, not positive definite"; }
        @Override public void addProduct(double s, double[] mat, int n, double[] x, double[] c, int m) {
            new CpuDenseSolver(ONE).addProduct(s, mat, n, x, c, m);
        }
        @Override public int trySolve(double[] a, int n, double tol, double[] b, int m) {
            int bad = Cholesky.factor(a, n, tol, ONE);
            java.util.Arrays.fill(a, Double.NaN);   // a may be destroyed; the fallback must build its own
            return forcedPivot >= 0 ? forcedPivot : bad;
        }
    }

    /** Two models; with {@code deadChannel} >= 0 that input channel is zero in both, so the summed Gram is singular. */
    static Tile merge(Backend be, int deadChannel, List<String> notes) {
        Random r = new Random(7);
        List<Tile> models = new ArrayList<>(), stats = new ArrayList<>();
        List<Params> params = new ArrayList<>();
        for (int k = 0; k < 2; k++) {
            float[] x = RegMeanTest.gaussian(40 * IN, r);
            if (deadChannel >= 0) for (int t = 0; t < 40; t++) x[t * IN + deadChannel] = 0f;
            models.add(Tile.ofArray(Shape.of(OUT, IN), RegMeanTest.gaussian(OUT * IN, r)));
            stats.add(Tile.ofArray(Shape.of(IN, IN), RegMeanTest.gram(x, 40, IN)));
            params.add(RegMeanTest.weight(1 + k));
        }
        Tile o = Tile.ofArray(Shape.of(OUT, IN), new float[OUT * IN]);
        try (TilePool pool = new TilePool()) {
            new RegMean(1.0, 0.0).merge(new MergeContext(be, pool, 0, notes::add), new MergeInputs("w", null, models, params, -1, 0, stats), o);
        }
        return o;
    }

    static float[] values(Tile t) {
        float[] v = new float[(int) t.size()];
        for (int i = 0; i < v.length; i++) v[i] = t.get(i);
        return v;
    }

    @Test
    void aBackendWithoutADeviceSolverSolvesOnTheCpu() {
        assertInstanceOf(CpuDenseSolver.class, RegMean.solver(CPU));
    }

    @Test
    void aBackendWithADeviceSolverSolvesThere() {
        Counting device = new Counting();
        assertEquals(device, RegMean.solver(withDevice(device)));
        List<String> notes = new ArrayList<>();
        float[] got = values(merge(withDevice(device), -1, notes));
        assertEquals(2, device.products, "one right-hand-side product per model");
        assertEquals(1, device.solves);
        assertTrue(notes.isEmpty(), notes.toString());
        assertArrayEquals(values(merge(CPU, -1, new ArrayList<>())), got, "the same kernels must give the same bits");
    }

    @Test
    void notPositiveDefiniteOnTheDeviceGivesTheCpuLeastSquaresResultAndTheSameNote() {
        List<String> cpuNotes = new ArrayList<>(), devNotes = new ArrayList<>();
        float[] cpu = values(merge(CPU, 4, cpuNotes));
        float[] dev = values(merge(withDevice(new Refusing(-1)), 4, devNotes));
        assertEquals(1, cpuNotes.size(), cpuNotes.toString());
        assertTrue(cpuNotes.getFirst().contains("not positive definite") && cpuNotes.getFirst().contains("least-squares"), cpuNotes.getFirst());
        assertEquals(cpuNotes, devNotes);
        assertArrayEquals(cpu, dev, "the fallback runs on the CPU, whatever refused the Cholesky");
    }

    @Test
    void aDeviceRefusalOnAPositiveDefiniteSystemStillGivesTheSolution() {
        // devInfo > 0 where the CPU would have succeeded (a GPU pivot a hair below the tolerance): least squares = the solution
        List<String> notes = new ArrayList<>();
        float[] dev = values(merge(withDevice(new Refusing(2)), -1, notes));
        float[] cpu = values(merge(CPU, -1, new ArrayList<>()));
        assertEquals(1, notes.size());
        assertTrue(notes.getFirst().contains("(pivot 2 of " + IN + ", rank " + IN + ")"), notes.getFirst());
        for (int i = 0; i < cpu.length; i++) assertEquals(cpu[i], dev[i], 1e-4 * (1 + Math.abs(cpu[i])), "W*[" + i + "]");
    }
}
