package dev.mergeforge.backend.cuda.cusolver;

import dev.mergeforge.backend.cuda.FfmLibrary;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * A minimal FFM binding of cuSOLVER's dense float64 Cholesky (potrf/potrs) for RegMean, in the
 * style of {@code cublas.Cublas}: it loads libcusolver.so.12 (CUDA 13.x ships cuSOLVER 12.x) or
 * else libcusolver.so.11 (CUDA 11.1 through 12.x ship cuSOLVER 11.x) with
 * {@link SymbolLookup#libraryLookup}, so a machine without it gets a reason, never a crash.
 * Matrices are column-major device addresses in the context current on the calling thread
 * (cuSOLVER, like cuBLAS, uses the device's primary context, the one the CUDA backend makes current).
 *
 * <p>Signatures and enum values as declared in cusolverDn.h, cusolver_common.h and
 * cublas_api.h (checked against copies of those headers):
 * <pre>
 * cusolverStatus_t cusolverDnCreate(cusolverDnHandle_t *handle);
 * cusolverStatus_t cusolverDnDestroy(cusolverDnHandle_t handle);
 * cusolverStatus_t cusolverDnSetStream(cusolverDnHandle_t handle, cudaStream_t streamId);
 * cusolverStatus_t cusolverDnDpotrf_bufferSize(cusolverDnHandle_t handle, cublasFillMode_t uplo, int n, double *A, int lda, int *Lwork);
 * cusolverStatus_t cusolverDnDpotrf(cusolverDnHandle_t handle, cublasFillMode_t uplo, int n, double *A, int lda,
 *                                   double *Workspace, int Lwork, int *devInfo);
 * cusolverStatus_t cusolverDnDpotrs(cusolverDnHandle_t handle, cublasFillMode_t uplo, int n, int nrhs,
 *                                   const double *A, int lda, double *B, int ldb, int *devInfo);
 * cublasFillMode_t: CUBLAS_FILL_MODE_LOWER = 0, CUBLAS_FILL_MODE_UPPER = 1
 * cusolverStatus_t: SUCCESS 0, NOT_INITIALIZED 1, ALLOC_FAILED 2, INVALID_VALUE 3, ARCH_MISMATCH 4,
 *                   MAPPING_ERROR 5, EXECUTION_FAILED 6, INTERNAL_ERROR 7, MATRIX_TYPE_NOT_SUPPORTED 8,
 *                   NOT_SUPPORTED 9, ZERO_PIVOT 10, INVALID_LICENSE 11
 * </pre>
 * Enums are C ints; cudaStream_t is the driver API's CUstream (the same opaque pointer).
 * {@code Lwork} counts doubles, not bytes. {@code devInfo} is an int in device memory: after
 * potrf, i &gt; 0 means the leading minor of order i is not positive definite; &lt; 0 names a bad argument.
 *
 * <p>One handle per instance; not thread-safe; {@link #close} destroys the handle.
 */
public final class Cusolver implements AutoCloseable {
    /** Library names tried in order (cuSOLVER's soname major differs from the toolkit's). */
    static final String[] LIBRARIES = {"libcusolver.so.12", "libcusolver.so.11"};
    static final int FILL_LOWER = 0;

    private static final FfmLibrary<Functions> LIB = new FfmLibrary<>("cuSOLVER", LIBRARIES, Cusolver::bind, Cusolver::statusName);

    /** The downcall handles of the loaded library. */
    private record Functions(MethodHandle create, MethodHandle destroy, MethodHandle setStream,
                             MethodHandle potrfBufferSize, MethodHandle potrf, MethodHandle potrs) { }

    private static Functions bind(FfmLibrary.Symbols lib) {
        return new Functions(
                lib.downcall("cusolverDnCreate", ADDRESS),
                lib.downcall("cusolverDnDestroy", ADDRESS),
                lib.downcall("cusolverDnSetStream", ADDRESS, ADDRESS),
                // (handle, uplo, n, A, lda, *Lwork)
                lib.downcall("cusolverDnDpotrf_bufferSize", ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS),
                // (handle, uplo, n, A, lda, Workspace, Lwork, devInfo)
                lib.downcall("cusolverDnDpotrf", ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS),
                // (handle, uplo, n, nrhs, A, lda, B, ldb, devInfo)
                lib.downcall("cusolverDnDpotrs", ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
    }

    private final Functions f;
    private final MemorySegment handle;

    private Cusolver(Functions f) {
        this.f = f;
        this.handle = LIB.createHandle("cusolverDnCreate", f.create);
    }

    /** A handle on the current device; throws with {@link #unavailableReason()} when cuSOLVER is absent. */
    public static Cusolver create() { return new Cusolver(LIB.functions()); }

    /** Empty when a libcusolver was found and bound, else a one-line reason naming the fix. Never throws. */
    public static Optional<String> unavailableReason() { return LIB.unavailableReason(); }

    /** The library that was bound ("libcusolver.so.12"), if any. */
    public static Optional<String> libraryName() { return LIB.libraryName(); }

    /** Queues this handle's work on {@code stream} (a CUstream's native pointer; 0 = the default stream). */
    public void setStream(long stream) {
        LIB.call("cusolverDnSetStream", () -> (int) f.setStream.invokeExact(handle, MemorySegment.ofAddress(stream)));
    }

    /** Doubles of device workspace {@link #dpotrf} needs for an n×n lower factorisation with leading dimension lda. */
    public int dpotrfBufferSize(int n, long a, int lda) {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment lwork = call.allocate(JAVA_INT);
            LIB.call("cusolverDnDpotrf_bufferSize(n=" + n + ")",
                    () -> (int) f.potrfBufferSize.invokeExact(handle, FILL_LOWER, n, MemorySegment.ofAddress(a), lda, lwork));
            return lwork.get(JAVA_INT, 0);
        }
    }

    /** Queues A = L·Lᵀ in place (lower triangle, column-major); the outcome lands in the device int at {@code devInfo}. */
    public void dpotrf(int n, long a, int lda, long work, int lwork, long devInfo) {
        LIB.call("cusolverDnDpotrf(n=" + n + ")", () -> (int) f.potrf.invokeExact(handle, FILL_LOWER, n, MemorySegment.ofAddress(a), lda,
                MemorySegment.ofAddress(work), lwork, MemorySegment.ofAddress(devInfo)));
    }

    /** Queues B = A⁻¹·B (B n×nrhs column-major) with the lower factor from {@link #dpotrf}. */
    public void dpotrs(int n, int nrhs, long a, int lda, long bm, int ldb, long devInfo) {
        LIB.call("cusolverDnDpotrs(n=" + n + ", nrhs=" + nrhs + ")", () -> (int) f.potrs.invokeExact(handle, FILL_LOWER, n, nrhs,
                MemorySegment.ofAddress(a), lda, MemorySegment.ofAddress(bm), ldb, MemorySegment.ofAddress(devInfo)));
    }

    static String statusName(int s) {
        return switch (s) {
            case 0 -> "CUSOLVER_STATUS_SUCCESS";
            case 1 -> "CUSOLVER_STATUS_NOT_INITIALIZED: no usable CUDA context or driver";
            case 2 -> "CUSOLVER_STATUS_ALLOC_FAILED: out of GPU memory";
            case 3 -> "CUSOLVER_STATUS_INVALID_VALUE: check sizes and leading dimensions";
            case 4 -> "CUSOLVER_STATUS_ARCH_MISMATCH";
            case 5 -> "CUSOLVER_STATUS_MAPPING_ERROR";
            case 6 -> "CUSOLVER_STATUS_EXECUTION_FAILED";
            case 7 -> "CUSOLVER_STATUS_INTERNAL_ERROR";
            case 8 -> "CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED";
            case 9 -> "CUSOLVER_STATUS_NOT_SUPPORTED";
            default -> "unknown";
        };
    }

    @Override
    public void close() {
        LIB.call("cusolverDnDestroy", () -> (int) f.destroy.invokeExact(handle));
    }
}
