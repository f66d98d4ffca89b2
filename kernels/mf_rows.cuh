// Serial row sums with coalesced loads, used by calib.cu's RMSNorm (docs/cuda.md, "Kernel
// designs"). The order it reproduces sums each row strictly left to right (RMSNorm,
// Norms.rms: a row's squares in double, the CPU forward pass's order), and a rounded sequential sum cannot be
// regrouped into a tree without changing its bits, so each row stays one thread's dependent chain.
// (The Reductions sums are stripes and a tree instead: mf_stripes.cuh.) What is GPU-shaped is the
// memory traffic: a block of MF_ROWS threads owns MF_ROWS consecutive rows and stages
// MF_ROW_TILE columns of all of them in shared memory per step, each warp reading 32 consecutive
// floats of one row (one 128-byte line), instead of every thread streaming its own row from its
// neighbour's. Each thread then consumes its row from shared memory in index order.
#ifndef MF_ROWS_CUH
#define MF_ROWS_CUH
#include "mf_common.cuh"

#define MF_ROWS 64                          // rows per block = threads per block (__launch_bounds__)
#define MF_ROW_TILE 64                      // columns of each row staged per step
#define MF_ROW_PITCH (MF_ROW_TILE + 1)      // odd pitch: lane t reads bank (t + c) % 32, no conflicts

// Rows row0 .. row0 + MF_ROWS - 1 of a matrix [*, len] at x (element (r, c) at flat index
// r * len + c; flat indices >= n do not exist, so the last row may be short and rows past the end
// empty): thread t returns the sum of mf_term<KIND>(x[i], y[i]) over row row0 + t, left to right
// from 0.0 in double (0.0 for an empty row). y is read only for MF_PRODUCT. Every thread of the
// block must call it with the same arguments (it has barriers); blockDim.x must be MF_ROWS.
template <int KIND>
__device__ __forceinline__ double mf_row_sum(const float* __restrict__ x, const float* __restrict__ y, long long row0,
                                             long long len, long long n) {
    MF_SHARED(float, sx, MF_ROWS * MF_ROW_PITCH);
    MF_SHARED(float, sy, KIND == MF_PRODUCT ? MF_ROWS * MF_ROW_PITCH : 1);
    const long long base = row0 * len;
    const long long mine = base + (long long) threadIdx.x * len;  // flat index of this thread's row
    double s = 0.0;
    // uniform bounds: every thread runs the same steps and reaches the same barriers
    for (long long c0 = 0; c0 < len && base + c0 < n; c0 += MF_ROW_TILE) {
        // stage: element e = (r, c) of the tile; consecutive threads take consecutive columns of a row
        for (int e = threadIdx.x; e < MF_ROWS * MF_ROW_TILE; e += MF_ROWS) {
            int r = e / MF_ROW_TILE, c = e % MF_ROW_TILE;
            long long i = base + (long long) r * len + c0 + c;
            if (c0 + c < len && i < n) {
                sx[r * MF_ROW_PITCH + c] = x[i];
                if (KIND == MF_PRODUCT) sy[r * MF_ROW_PITCH + c] = y[i];
            }
        }
        __syncthreads();
        // consume: this thread's row, in index order (exactly the cells staged above)
        for (int c = 0; c < MF_ROW_TILE; c++) {
            long long i = mine + c0 + c;
            if (c0 + c >= len || i >= n) break;
            float a = sx[threadIdx.x * MF_ROW_PITCH + c];
            s = __dadd_rn(s, mf_term<KIND>(a, KIND == MF_PRODUCT ? (float) sy[threadIdx.x * MF_ROW_PITCH + c] : a));
        }
        __syncthreads();  // the next step overwrites the tile
    }
    return s;
}
#endif
