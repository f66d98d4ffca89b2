package dev.mergeforge.backend.cuda.cublas;

import dev.mergeforge.errors.MergeforgeException;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * A minimal FFM binding of cuBLAS — single-precision GEMM for calibration; for RegMean's float64
 * algebra on the GPU, double GEMM, the stream and the strided copy that reads a factor's
 * diagonal — independent of JCublas:
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

    private static Binding binding;

    /** The loaded library and its downcall handles, or why it could not be loaded. */
    record Binding(String library, MethodHandle create, MethodHandle destroy, MethodHandle setMathMode,
                   MethodHandle sgemm, MethodHandle setStream, MethodHandle dcopy, MethodHandle dgemm, String error) {
        static Binding failed(String error) { return new Binding(null, null, null, null, null, null, null, null, error); }
    }

    private final Binding b;
    private final MemorySegment handle;

    private Cublas(Binding b) {
        this.b = b;
        // the slot lives only for the call: a handle owned by a thread-confined arena could not be closed from another thread
        try (Arena call = Arena.ofConfined()) {
            MemorySegment slot = call.allocate(ADDRESS);
            check((int) b.create.invokeExact(slot), "cublasCreate_v2");
            this.handle = slot.get(ADDRESS, 0);
        } catch (MergeforgeException e) {
            throw e;
        } catch (Throwable t) {
            throw new MergeforgeException("cublasCreate_v2 failed: " + t, t);
        }
        try {
            check((int) b.setMathMode.invokeExact(handle, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode(PEDANTIC)");
        } catch (Throwable t) {
            close();
            throw t instanceof MergeforgeException e ? e : new MergeforgeException("cublasSetMathMode failed: " + t, t);
        }
    }

    /** A handle on the current device; throws with {@link #unavailableReason()} when cuBLAS is absent. */
    public static Cublas create() {
        Binding bd = binding();
        if (bd.error != null) throw new MergeforgeException("cuBLAS is unavailable: " + bd.error);
        return new Cublas(bd);
    }

    /** Empty when a libcublas was found and bound, else why not. Never throws. */
    public static Optional<String> unavailableReason() { return Optional.ofNullable(binding().error); }

    /** The library that was bound ("libcublas.so.13"), if any. */
    public static Optional<String> libraryName() { return Optional.ofNullable(binding().library); }

    static synchronized Binding binding() {
        if (binding == null) binding = bind();
        return binding;
    }

    private static Binding bind() {
        for (String lib : LIBRARIES) {
            SymbolLookup lookup;
            try {
                lookup = SymbolLookup.libraryLookup(lib, Arena.global());
            } catch (IllegalArgumentException e) {
                continue;
            }
            try {
                Linker l = Linker.nativeLinker();
                MethodHandle create = l.downcallHandle(find(lookup, "cublasCreate_v2"), FunctionDescriptor.of(JAVA_INT, ADDRESS));
                MethodHandle destroy = l.downcallHandle(find(lookup, "cublasDestroy_v2"), FunctionDescriptor.of(JAVA_INT, ADDRESS));
                MethodHandle math = l.downcallHandle(find(lookup, "cublasSetMathMode"), FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
                // cublasSgemm_v2(handle, transa, transb, m, n, k, *alpha, A, lda, B, ldb, *beta, C, ldc)
                MethodHandle sgemm = l.downcallHandle(find(lookup, "cublasSgemm_v2"), FunctionDescriptor.of(JAVA_INT,
                        ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT,
                        ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
                // cublasSetStream_v2(cublasHandle_t handle, cudaStream_t streamId)
                MethodHandle stream = l.downcallHandle(find(lookup, "cublasSetStream_v2"), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
                // cublasDcopy_v2(cublasHandle_t handle, int n, const double *x, int incx, double *y, int incy)
                MethodHandle dcopy = l.downcallHandle(find(lookup, "cublasDcopy_v2"),
                        FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT));
                // cublasDgemm_v2(handle, transa, transb, m, n, k, const double *alpha, const double *A, lda,
                //                const double *B, ldb, const double *beta, double *C, ldc); alpha/beta host pointers (default pointer mode)
                MethodHandle dgemm = l.downcallHandle(find(lookup, "cublasDgemm_v2"), FunctionDescriptor.of(JAVA_INT,
                        ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT,
                        ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
                return new Binding(lib, create, destroy, math, sgemm, stream, dcopy, dgemm, null);
            } catch (RuntimeException e) {
                return Binding.failed(lib + " is there but cannot be bound: " + e.getMessage());
            }
        }
        return Binding.failed("no cuBLAS library (" + String.join(" or ", LIBRARIES)
                + " not found): install the CUDA toolkit's cuBLAS or add its directory to LD_LIBRARY_PATH");
    }

    private static MemorySegment find(SymbolLookup lookup, String name) {
        return lookup.find(name).orElseThrow(() -> new IllegalArgumentException("symbol " + name + " missing"));
    }

    /**
     * C = alpha * op(A) * op(B) + beta * C, column-major, op = transpose when the flag is set;
     * A, B, C are device addresses; m, n, k, lda, ldb, ldc as in BLAS.
     */
    public void sgemm(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, int lda,
                      long bm, int ldb, float beta, long c, int ldc) {
        if (m < 0 || n < 0 || k < 0) throw new IllegalArgumentException("sgemm sizes must be >= 0: m=" + m + " n=" + n + " k=" + k);
        try (Arena call = Arena.ofConfined()) {
            MemorySegment al = call.allocateFrom(JAVA_FLOAT, alpha), be = call.allocateFrom(JAVA_FLOAT, beta);
            int rc = (int) b.sgemm.invokeExact(handle, transA ? OP_T : OP_N, transB ? OP_T : OP_N, m, n, k,
                    al, MemorySegment.ofAddress(a), lda, MemorySegment.ofAddress(bm), ldb, be, MemorySegment.ofAddress(c), ldc);
            check(rc, "cublasSgemm_v2(m=" + m + ", n=" + n + ", k=" + k + ")");
        } catch (MergeforgeException e) {
            throw e;
        } catch (Throwable t) {
            throw new MergeforgeException("cublasSgemm_v2 failed: " + t, t);
        }
    }

    /** As {@link #sgemm} in float64: C = alpha * op(A) * op(B) + beta * C, column-major device addresses. */
    public void dgemm(boolean transA, boolean transB, int m, int n, int k, double alpha, long a, int lda,
                      long bm, int ldb, double beta, long c, int ldc) {
        if (m < 0 || n < 0 || k < 0) throw new IllegalArgumentException("dgemm sizes must be >= 0: m=" + m + " n=" + n + " k=" + k);
        try (Arena call = Arena.ofConfined()) {
            MemorySegment al = call.allocateFrom(JAVA_DOUBLE, alpha), be = call.allocateFrom(JAVA_DOUBLE, beta);
            int rc = (int) b.dgemm.invokeExact(handle, transA ? OP_T : OP_N, transB ? OP_T : OP_N, m, n, k,
                    al, MemorySegment.ofAddress(a), lda, MemorySegment.ofAddress(bm), ldb, be, MemorySegment.ofAddress(c), ldc);
            check(rc, "cublasDgemm_v2(m=" + m + ", n=" + n + ", k=" + k + ")");
        } catch (MergeforgeException e) {
            throw e;
        } catch (Throwable t) {
            throw new MergeforgeException("cublasDgemm_v2 failed: " + t, t);
        }
    }

    /** Queues this handle's work on {@code stream} (a CUstream's native pointer; 0 = the default stream). */
    public void setStream(long stream) {
        try {
            check((int) b.setStream.invokeExact(handle, MemorySegment.ofAddress(stream)), "cublasSetStream_v2");
        } catch (MergeforgeException e) {
            throw e;
        } catch (Throwable t) {
            throw new MergeforgeException("cublasSetStream_v2 failed: " + t, t);
        }
    }

    /** y[i·incy] = x[i·incx] for i &lt; n, float64 device addresses (e.g. a matrix diagonal with incx = lda + 1). */
    public void dcopy(int n, long x, int incx, long y, int incy) {
        try {
            check((int) b.dcopy.invokeExact(handle, n, MemorySegment.ofAddress(x), incx, MemorySegment.ofAddress(y), incy),
                    "cublasDcopy_v2(n=" + n + ", incx=" + incx + ")");
        } catch (MergeforgeException e) {
            throw e;
        } catch (Throwable t) {
            throw new MergeforgeException("cublasDcopy_v2 failed: " + t, t);
        }
    }

    private static void check(int status, String what) {
        if (status != 0) throw new MergeforgeException(what + " returned cuBLAS status " + status + " (" + statusName(status) + ")");
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
        try {
            check((int) b.destroy.invokeExact(handle), "cublasDestroy_v2");
        } catch (MergeforgeException e) {
            throw e;
        } catch (Throwable t) {
            throw new MergeforgeException("cublasDestroy_v2 failed: " + t, t);
        }
    }
}
