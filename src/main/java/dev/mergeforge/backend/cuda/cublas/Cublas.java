package dev.mergeforge.backend.cuda.cublas;

import dev.mergeforge.backend.cuda.FfmLibrary;

import java.lang.foreign.Arena;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * A minimal FFM binding of cuBLAS — single-precision GEMM for calibration; for RegMean's float64
 * algebra on the GPU, double GEMM, the stream and the strided copy that reads a factor's
 * diagonal — the one route to cuBLAS (docs/cuda.md: the JCublas dependency was dropped):
 * it loads libcublas.so.13 or else libcublas.so.12 (whichever the machine has), so it works with
 * CUDA 12 and 13 installs alike. Matrices are column-major device addresses (e.g. from the CUDA
 * backend's buffers) in the context current on the calling thread (cuBLAS uses the device's
 * primary context, the one the CUDA backend makes current). The handle is put in pedantic math
 * mode: true float32 products, never TF32.
 *
 * <p>One handle per instance; not thread-safe; {@link #close} destroys the handle.
 */
public final class Cublas implements AutoCloseable {
    /** Library names tried in order. */
    static final String[] LIBRARIES = {"libcublas.so.13", "libcublas.so.12"};
    private static final int CUBLAS_PEDANTIC_MATH = 2;
    private static final int OP_N = 0, OP_T = 1;
    // cublas{S,D}gemm_v2(handle, transa, transb, m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc);
    // alpha/beta are host pointers (default pointer mode), so both precisions take the same parameters
    private static final MemoryLayout[] GEMM = {
            ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT,
            ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT};

    private static final FfmLibrary<Functions> LIB = new FfmLibrary<>("cuBLAS", LIBRARIES, Cublas::bind, Cublas::statusName);

    /** The downcall handles of the loaded library. */
    private record Functions(MethodHandle create, MethodHandle destroy, MethodHandle setMathMode,
                             MethodHandle sgemm, MethodHandle setStream, MethodHandle dcopy, MethodHandle dgemm) { }

    private static Functions bind(FfmLibrary.Symbols lib) {
        return new Functions(
                lib.downcall("cublasCreate_v2", ADDRESS),
                lib.downcall("cublasDestroy_v2", ADDRESS),
                lib.downcall("cublasSetMathMode", ADDRESS, JAVA_INT),
                lib.downcall("cublasSgemm_v2", GEMM),
                // cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId)
                lib.downcall("cublasSetStream_v2", ADDRESS, ADDRESS),
                // cublasDcopy_v2(cublasHandle_t handle, int n, const double *x, int incx, double *y, int incy)
                lib.downcall("cublasDcopy_v2", ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT),
                lib.downcall("cublasDgemm_v2", GEMM));
    }

    private final Functions f;
    private final MemorySegment handle;

    private Cublas(Functions f) {
        this.f = f;
        this.handle = LIB.createHandle("cublasCreate_v2", f.create);
        try {
            LIB.call("cublasSetMathMode(PEDANTIC)", () -> (int) f.setMathMode.invokeExact(handle, CUBLAS_PEDANTIC_MATH));
        } catch (RuntimeException | Error e) {
            close();
            throw e;
        }
    }

    /** A handle on the current device; throws with {@link #unavailableReason()} when cuBLAS is absent. */
    public static Cublas create() { return new Cublas(LIB.functions()); }

    /** Empty when a libcublas was found and bound, else why not. Never throws. */
    public static Optional<String> unavailableReason() { return LIB.unavailableReason(); }

    /** The library that was bound ("libcublas.so.13"), if any. */
    public static Optional<String> libraryName() { return LIB.libraryName(); }

    /**
     * C = alpha * op(A) * op(B) + beta * C, column-major, op = transpose when the flag is set;
     * A, B, C are device addresses; m, n, k, lda, ldb, ldc as in BLAS.
     */
    public void sgemm(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, int lda,
                      long bm, int ldb, float beta, long c, int ldc) {
        try (Arena call = Arena.ofConfined()) {
            gemm("sgemm", "cublasSgemm_v2", f.sgemm, transA, transB, m, n, k, call.allocateFrom(JAVA_FLOAT, alpha), a, lda,
                    bm, ldb, call.allocateFrom(JAVA_FLOAT, beta), c, ldc);
        }
    }

    /** As {@link #sgemm} in float64: C = alpha * op(A) * op(B) + beta * C, column-major device addresses. */
    public void dgemm(boolean transA, boolean transB, int m, int n, int k, double alpha, long a, int lda,
                      long bm, int ldb, double beta, long c, int ldc) {
        try (Arena call = Arena.ofConfined()) {
            gemm("dgemm", "cublasDgemm_v2", f.dgemm, transA, transB, m, n, k, call.allocateFrom(JAVA_DOUBLE, alpha), a, lda,
                    bm, ldb, call.allocateFrom(JAVA_DOUBLE, beta), c, ldc);
        }
    }

    /** Either GEMM, with alpha and beta already in host memory of the routine's precision. */
    private void gemm(String op, String symbol, MethodHandle h, boolean transA, boolean transB, int m, int n, int k,
                      MemorySegment alpha, long a, int lda, long bm, int ldb, MemorySegment beta, long c, int ldc) {
        if (m < 0 || n < 0 || k < 0) throw new IllegalArgumentException(op + " sizes must be >= 0: m=" + m + " n=" + n + " k=" + k);
        LIB.call(symbol + "(m=" + m + ", n=" + n + ", k=" + k + ")", () -> (int) h.invokeExact(handle, transA ? OP_T : OP_N,
                transB ? OP_T : OP_N, m, n, k, alpha, MemorySegment.ofAddress(a), lda, MemorySegment.ofAddress(bm), ldb,
                beta, MemorySegment.ofAddress(c), ldc));
    }

    /** Queues this handle's work on {@code stream} (a CUstream's native pointer; 0 = the default stream). */
    public void setStream(long stream) {
        LIB.call("cublasSetStream_v2", () -> (int) f.setStream.invokeExact(handle, MemorySegment.ofAddress(stream)));
    }

    /** y[i·incy] = x[i·incx] for i &lt; n, float64 device addresses (e.g. a matrix diagonal with incx = lda + 1). */
    public void dcopy(int n, long x, int incx, long y, int incy) {
        LIB.call("cublasDcopy_v2(n=" + n + ", incx=" + incx + ")",
                () -> (int) f.dcopy.invokeExact(handle, n, MemorySegment.ofAddress(x), incx, MemorySegment.ofAddress(y), incy));
    }

    static String statusName(int s) {
        return switch (s) {
            case 0 -> "CUBLAS_STATUS_SUCCESS";
            case 1 -> "CUBLAS_STATUS_NOT_INITIALIZED: no usable CUDA context or driver";
            case 3 -> "CUBLAS_STATUS_ALLOC_FAILED: out of GPU memory";
            case 7 -> "CUBLAS_STATUS_INVALID_VALUE: check sizes and leading dimensions";
            case 8 -> "CUBLAS_STATUS_ARCH_MISMATCH";
            case 11 -> "CUBLAS_STATUS_MAPPING_ERROR";
            case 13 -> "CUBLAS_STATUS_EXECUTION_FAILED";
            case 14 -> "CUBLAS_STATUS_INTERNAL_ERROR";
            case 15 -> "CUBLAS_STATUS_NOT_SUPPORTED";
            default -> "unknown";
        };
    }

    @Override
    public void close() {
        LIB.call("cublasDestroy_v2", () -> (int) f.destroy.invokeExact(handle));
    }
}
