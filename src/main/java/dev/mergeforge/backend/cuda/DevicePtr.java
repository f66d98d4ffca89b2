package dev.mergeforge.backend.cuda;

import jcuda.driver.CUdeviceptr;

/** A CUdeviceptr that also tells its raw device address (for pointer arrays and cuBLAS calls). */
final class DevicePtr extends CUdeviceptr {
    /** The device address cuMemAlloc stored in this pointer (0 before allocation). */
    long address() { return getNativePointer(); }
}
