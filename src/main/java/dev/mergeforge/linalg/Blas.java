package dev.mergeforge.linalg;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;
import java.util.logging.Logger;

/**
 * An optional fast path for RegMean's float64 linear algebra: OpenBLAS (dpotrf, dtrsm, dgemm)
 * through FFM when the system has it (Debian: libopenblas0-pthread), else absent and the plain
 * Java kernels of {@link Cholesky} and {@link Gemm} run. Results agree with the Java kernels to
 * rounding (OpenBLAS orders its sums differently), not bit for bit.
 *
 * <p>Row-major n×n symmetric A is its own column-major transpose, so LAPACK's column-major 'U'
 * factor of A, read back row-major, is exactly the lower L that {@link Cholesky#solve} expects.
 * Heap arrays are copied into a confined arena for each call (O(n²) next to O(n³) work).
 */
public final class Blas {
    private static final Logger LOG = Logger.getLogger(Blas.class.getName());
    private static final String[] LIBRARIES = {"libopenblas.so.0", "libopenblas.so"};
    private static final int ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112, LEFT = 141, LOWER = 122, NON_UNIT = 131;

    private static final MethodHandle DPOTRF, DTRSM, DGEMM;
    private static final String UNAVAILABLE;

    static {
        MethodHandle potrf = null, trsm = null, gemm = null;
        String why = null;
        if (Boolean.getBoolean("mergeforge.noblas")) {
            why = "disabled by -Dmergeforge.noblas";
        } else {
            SymbolLookup lib = null;
            for (String name : LIBRARIES) {
                try {
                    lib = SymbolLookup.libraryLookup(name, Arena.global());
                    break;
                } catch (IllegalArgumentException e) {
                    // try the next name
                }
            }
            if (lib == null) {
                why = "OpenBLAS not found (libopenblas.so.0); install libopenblas0-pthread for faster RegMean";
            } else {
                Linker l = Linker.nativeLinker();
                ValueLayout.OfInt I = ValueLayout.JAVA_INT;
                ValueLayout.OfDouble D = ValueLayout.JAVA_DOUBLE;
                var A = ValueLayout.ADDRESS;
                try {
                    // void dpotrf_(char* uplo, int* n, double* a, int* lda, int* info, size_t uplo_len)
                    potrf = l.downcallHandle(lib.find("dpotrf_").orElseThrow(),
                            FunctionDescriptor.ofVoid(A, A, A, A, A, ValueLayout.JAVA_LONG));
                    // cblas_dtrsm(order, side, uplo, transA, diag, m, n, alpha, A, lda, B, ldb)
                    trsm = l.downcallHandle(lib.find("cblas_dtrsm").orElseThrow(),
                            FunctionDescriptor.ofVoid(I, I, I, I, I, I, I, D, A, I, A, I));
                    // cblas_dgemm(order, transA, transB, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
                    gemm = l.downcallHandle(lib.find("cblas_dgemm").orElseThrow(),
                            FunctionDescriptor.ofVoid(I, I, I, I, I, I, D, A, I, A, I, D, A, I));
                } catch (RuntimeException e) {
                    why = "OpenBLAS lacks dpotrf_/cblas_dtrsm/cblas_dgemm (" + e + ")";
                    potrf = trsm = gemm = null;
                }
            }
        }
        DPOTRF = potrf;
        DTRSM = trsm;
        DGEMM = gemm;
        UNAVAILABLE = why;
        LOG.fine(why == null ? "RegMean linear algebra: OpenBLAS" : "RegMean linear algebra: Java (" + why + ")");
    }

    private Blas() {}

    /** Empty when OpenBLAS is used, else why not. */
    public static Optional<String> unavailableReason() { return Optional.ofNullable(UNAVAILABLE); }

    public static boolean available() { return UNAVAILABLE == null; }

    /** As {@link Cholesky#factor}: factors a in place (lower L row-major); -1 on success, else a failing pivot. */
    static int factor(double[] a, int n) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment m = arena.allocateFrom(ValueLayout.JAVA_DOUBLE, a);
            MemorySegment uplo = arena.allocateFrom(ValueLayout.JAVA_BYTE, (byte) 'U');
            MemorySegment nn = arena.allocateFrom(ValueLayout.JAVA_INT, n), info = arena.allocate(ValueLayout.JAVA_INT);
            DPOTRF.invokeExact(uplo, nn, m, nn, info, 1L);
            int rc = info.get(ValueLayout.JAVA_INT, 0);
            if (rc < 0) throw new IllegalStateException("dpotrf: argument " + (-rc) + " is invalid (n = " + n + ")");
            MemorySegment.copy(m, ValueLayout.JAVA_DOUBLE, 0, a, 0, a.length);
            return rc == 0 ? -1 : rc - 1;
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("dpotrf failed: " + t, t);
        }
    }

    /** As {@link Cholesky#solve}: b (n×m row-major) becomes A⁻¹·b, with L from {@link #factor}. */
    static void solve(double[] l, int n, double[] b, int m) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment lm = arena.allocateFrom(ValueLayout.JAVA_DOUBLE, l), bm = arena.allocateFrom(ValueLayout.JAVA_DOUBLE, b);
            // L·Y = B, then Lᵀ·X = Y
            DTRSM.invokeExact(ROW_MAJOR, LEFT, LOWER, NO_TRANS, NON_UNIT, n, m, 1.0, lm, n, bm, m);
            DTRSM.invokeExact(ROW_MAJOR, LEFT, LOWER, TRANS, NON_UNIT, n, m, 1.0, lm, n, bm, m);
            MemorySegment.copy(bm, ValueLayout.JAVA_DOUBLE, 0, b, 0, b.length);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("dtrsm failed: " + t, t);
        }
    }

    /** As {@link Gemm#addProduct}: C (n×m) += s·M·X with M n×n and X n×m, all row-major. */
    static void addProduct(double s, double[] mat, int n, double[] x, double[] c, int m) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment a = arena.allocateFrom(ValueLayout.JAVA_DOUBLE, mat), bx = arena.allocateFrom(ValueLayout.JAVA_DOUBLE, x),
                    cc = arena.allocateFrom(ValueLayout.JAVA_DOUBLE, c);
            DGEMM.invokeExact(ROW_MAJOR, NO_TRANS, NO_TRANS, n, m, n, s, a, n, bx, m, 1.0, cc, m);
            MemorySegment.copy(cc, ValueLayout.JAVA_DOUBLE, 0, c, 0, c.length);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("dgemm failed: " + t, t);
        }
    }
}
