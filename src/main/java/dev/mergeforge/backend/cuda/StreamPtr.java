package dev.mergeforge.backend.cuda;

import jcuda.driver.CUstream;

/** A CUstream that also tells its raw handle, for libraries bound through FFM (cuSOLVER, cuBLAS) to queue on the same stream. */
final class StreamPtr extends CUstream {
    /** The handle cuStreamCreate stored in this stream (0 before creation: the legacy default stream). */
    long address() { return getNativePointer(); }
}
