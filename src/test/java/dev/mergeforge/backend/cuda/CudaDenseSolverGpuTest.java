package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.DenseSolver;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.linalg.CpuDenseSolver;
import dev.mergeforge.linalg.SpdSolver;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import static dev.mergeforge.linalg.SpdMatrices.gram;
import static dev.mergeforge.linalg.SpdMatrices.random;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * RegMean's GPU algebra through the real cuBLAS/cuSOLVER against the CPU: products, solves of
 * random SPD systems, and systems the CPU calls not positive definite. Needs a GPU with libcusolver and libcublas; skips
 * with the reason otherwise. GPU N with -Dmergeforge.cuda.device=N (default 0).
 *
 * <p>Tolerance: both are float64 Cholesky solves with different summation orders; with A's
 * condition number κ ≤ 400 here (eigenvalues in [0.01, ~4]) the difference is a few κ·n·ε,
 * so |x_gpu − x_cpu| ≤ 1e-9·max|x_cpu| leaves a wide margin and still catches any layout error.
 */
@Tag("gpu")
class CudaDenseSolverGpuTest {
    static final Parallel PAR = new Parallel(0);

    /** Skips (with the reason in the report) unless CUDA and cuSOLVER are both usable. */
    static void needsGpu() {
        Assumptions.assumeTrue(CudaBackend.unavailableReason().isEmpty(), () -> "CUDA unavailable: " + CudaBackend.unavailableReason().orElse(""));
        Assumptions.assumeTrue(CudaDenseSolver.unavailableReason().isEmpty(), () -> "cuSOLVER unavailable: " + CudaDenseSolver.unavailableReason().orElse(""));
    }

    @AfterAll static void shutdown() { PAR.shutdown(); }

    static CudaBackend open() {
        needsGpu();
        return new CudaBackend(Integer.getInteger("mergeforge.cuda.device", 0));
    }

    @Test
    void cusolverMatchesTheCpuOnRandomSpdSystems() {
        try (CudaBackend cuda = open()) {
            DenseSolver gpu = cuda.denseSolver().orElseThrow();
            System.out.println("solving on " + gpu.name());
            for (int[] nm : new int[][] {{1, 1}, {7, 3}, {64, 65}, {257, 130}, {1024, 300}, {33, 0}}) {
                int n = nm[0], m = nm[1];
                double[] a = gram(n, n + 5, 0.01, n), b = random(n * m, m + 1);
                double tol = SpdSolver.tolerance(a, n);
                double[] want = b.clone(), got = b.clone();
                assertEquals(-1, new CpuDenseSolver(PAR).trySolve(a.clone(), n, tol, want, m));
                assertEquals(-1, gpu.trySolve(a.clone(), n, tol, got, m), "n=" + n);
                double max = 0;
                for (double v : want) max = Math.max(max, Math.abs(v));
                for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 1e-9 * max, "n=" + n + " m=" + m + " at " + i);
            }
        }
    }

    @Test
    void cublasProductsMatchTheCpu() {
        try (CudaBackend cuda = open()) {
            DenseSolver gpu = cuda.denseSolver().orElseThrow();
            for (int[] nm : new int[][] {{1, 1}, {7, 3}, {257, 130}, {1024, 300}}) {
                int n = nm[0], m = nm[1];
                double[] mat = random(n * n, n), x = random(n * m, m + 7), c = random(n * m, 99);
                double[] want = c.clone(), got = c.clone();
                new CpuDenseSolver(PAR).addProduct(0.75, mat, n, x, want, m);
                gpu.addProduct(0.75, mat, n, x, got, m);
                // float64 sums of n products of N(0,1) values in any order: |error| ≲ n·ε·√n
                for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 1e-12 * n * (1 + Math.abs(want[i])), "n=" + n + " m=" + m + " at " + i);
            }
        }
    }

    @Test
    void notPositiveDefiniteIsReportedAtTheCpuPivotWithBUntouched() {
        int n = 96, m = 5;
        double[] dead = gram(n, 200, 0, 1);
        for (int i = 0; i < n; i++) { dead[40 * n + i] = 0; dead[i * n + 40] = 0; }
        double[] tiny = gram(n, 200, 0, 2);
        for (int i = 0; i < n; i++) { tiny[70 * n + i] *= 1e-7; tiny[i * n + 70] *= 1e-7; }
        double[] both = gram(n, 200, 0, 3);
        for (int i = 0; i < n; i++) { both[10 * n + i] *= 1e-7; both[i * n + 10] *= 1e-7; }
        for (int i = 0; i < n; i++) { both[80 * n + i] = 0; both[i * n + 80] = 0; }
        try (CudaBackend cuda = open()) {
            DenseSolver gpu = cuda.denseSolver().orElseThrow();
            for (double[] a : new double[][] {dead, tiny, both}) {
                double tol = SpdSolver.tolerance(a, n);
                double[] b = random(n * m, 3), got = b.clone();
                int cpu = new CpuDenseSolver(PAR).trySolve(a.clone(), n, tol, b.clone(), m);
                assertTrue(cpu >= 0);
                assertEquals(cpu, gpu.trySolve(a.clone(), n, tol, got, m));
                assertArrayEquals(b, got);
            }
            // and the backend still works after a refusal
            double[] a = gram(8, 20, 0.01, 4), b = random(8, 5), want = b.clone();
            new CpuDenseSolver(PAR).trySolve(a.clone(), 8, SpdSolver.tolerance(a, 8), want, 1);
            assertEquals(-1, gpu.trySolve(a, 8, SpdSolver.tolerance(a, 8), b, 1));
            for (int i = 0; i < 8; i++) assertEquals(want[i], b[i], 1e-9 * (1 + Math.abs(want[i])));
        }
    }
}
