package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.backend.cuda.cusolver.Cusolver;
import dev.mergeforge.errors.MergeforgeException;
import dev.mergeforge.linalg.CpuDenseSolver;
import dev.mergeforge.linalg.SpdSolver;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import static dev.mergeforge.linalg.SpdMatrices.gram;
import static dev.mergeforge.linalg.SpdMatrices.random;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The GPU algebra's own logic — uploads, row-/column-major layouts of the products and solves,
 * the CPU's pivot rule on the factor, devInfo, buffers returned — with cuBLAS/cuSOLVER replaced by host loops
 * ({@link HostLapack}) on host "device" memory. The real library runs in CudaDenseSolverGpuTest.
 */
class CudaDenseSolverHostTest {
    static final Parallel ONE = new Parallel(1);

    @AfterAll static void shutdown() { ONE.shutdown(); }

    @Test
    void solvesAsTheCpuDoesOnRandomSpdSystems() {
        HostDevice dev = new HostDevice();
        HostLapack lapack = new HostLapack();
        try (DeviceBufferPool pool = new DeviceBufferPool(dev)) {
            CudaDenseSolver gpu = new CudaDenseSolver(dev, pool, lapack, new Object());
            for (int[] nm : new int[][] {{1, 1}, {5, 3}, {37, 11}, {64, 65}, {9, 0}}) {
                int n = nm[0], m = nm[1];
                double[] a = gram(n, n + 5, 0.01, n), b = random(n * m, m + 1);
                double tol = SpdSolver.tolerance(a, n);
                double[] want = b.clone(), got = b.clone();
                assertEquals(-1, new CpuDenseSolver(ONE).trySolve(a.clone(), n, tol, want, m));
                assertEquals(-1, gpu.trySolve(a.clone(), n, tol, got, m), "n=" + n);
                for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 1e-9 * (1 + Math.abs(want[i])), "n=" + n + " m=" + m + " at " + i);
            }
            assertEquals(4, lapack.potrsCalls, "no right-hand sides, no potrs");
        }
        dev.close();   // throws if the pool leaked a buffer
    }

    @Test
    void productsAreTheCpuProducts() {
        HostDevice dev = new HostDevice();
        HostLapack lapack = new HostLapack();
        try (DeviceBufferPool pool = new DeviceBufferPool(dev)) {
            CudaDenseSolver gpu = new CudaDenseSolver(dev, pool, lapack, new Object());
            for (int[] nm : new int[][] {{1, 1}, {5, 3}, {37, 11}, {64, 65}}) {
                int n = nm[0], m = nm[1];
                // a non-symmetric M, so a transposed operand cannot pass unnoticed
                double[] mat = random(n * n, n), x = random(n * m, m + 7), c = random(n * m, 99);
                double[] want = c.clone(), got = c.clone();
                new CpuDenseSolver(ONE).addProduct(0.75, mat, n, x, want, m);
                gpu.addProduct(0.75, mat, n, x, got, m);
                for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 1e-12 * (1 + Math.abs(want[i])), "n=" + n + " m=" + m + " at " + i);
            }
            assertEquals(4, lapack.gemmCalls);
        }
        dev.close();
    }

    @Test
    void failingPivotsAreReportedAsTheCpuReportsThemAndLeaveBUntouched() {
        int n = 12, m = 4;
        HostDevice dev = new HostDevice();
        HostLapack lapack = new HostLapack();
        try (DeviceBufferPool pool = new DeviceBufferPool(dev)) {
            CudaDenseSolver gpu = new CudaDenseSolver(dev, pool, lapack, new Object());
            // a dead input channel: an exactly zero pivot, devInfo > 0
            double[] dead = gram(n, 30, 0, 1);
            for (int i = 0; i < n; i++) { dead[5 * n + i] = 0; dead[i * n + 5] = 0; }
            // a tiny but positive pivot: cuSOLVER succeeds, the CPU's relative tolerance does not
            double[] tiny = gram(n, 30, 0, 2);
            for (int i = 0; i < n; i++) { tiny[7 * n + i] *= 1e-7; tiny[i * n + 7] *= 1e-7; }
            // both: cuSOLVER stops at the dead channel (devInfo 10), the CPU already at the tiny pivot 3
            double[] both = gram(n, 30, 0, 3);
            for (int i = 0; i < n; i++) { both[3 * n + i] *= 1e-7; both[i * n + 3] *= 1e-7; }
            for (int i = 0; i < n; i++) { both[9 * n + i] = 0; both[i * n + 9] = 0; }
            for (double[] a : new double[][] {dead, tiny, both}) {
                double tol = SpdSolver.tolerance(a, n);
                double[] b = random(n * m, 3), got = b.clone();
                int cpu = new CpuDenseSolver(ONE).trySolve(a.clone(), n, tol, b.clone(), m);
                assertTrue(cpu >= 0);
                assertEquals(cpu, gpu.trySolve(a.clone(), n, tol, got, m));
                assertArrayEquals(b, got, "b must be left as it was when the factorisation fails");
            }
            assertEquals(0, lapack.potrsCalls);
        }
        dev.close();
    }

    @Test
    void theCudaBackendWithoutCusolverFailsInOneLine() {
        Assumptions.assumeTrue(Cusolver.unavailableReason().isPresent(), "cuSOLVER is installed here");
        try (CudaBackend cuda = new CudaBackend(new HostDevice())) {
            MergeforgeException e = assertThrows(MergeforgeException.class, cuda::denseSolver);
            assertTrue(!e.getMessage().contains("\n") && e.getMessage().contains("cuSOLVER") && e.getMessage().contains("libcusolver.so.12")
                    && e.getMessage().contains("--backend java"), e.getMessage());
        }
    }
}
