package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.Lanes;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.tensor.Tile;

import java.util.List;

/**
 * The ops the CUDA backend still runs on the host with the Java backend's code (countNonZero,
 * laneRanks and DELLA's probability drop with its rescaling have no kernel yet):
 * each one first calls {@link #onHost}, which brings the values of every tile it reads or writes
 * into host memory and forgets the device copies of the tiles it writes, so the op sees what the
 * device ops wrote and the next device op sees what it wrote. {@link CudaBackend} extends this
 * class, so an op it does not run on the GPU can only come from here: CudaBackendCoverageTest
 * fails when a Backend method is declared neither here nor in CudaBackend.
 */
abstract class HostFallbacks extends JavaBackend {

    HostFallbacks() { super(0); }

    /** Before host code runs on these tiles: their values in host memory, the device copies of {@code writes} forgotten. */
    abstract void onHost(List<Tile> reads, List<Tile> writes);

    @Override
    public synchronized long countNonZero(Tile x) {
        onHost(List.of(x), List.of());
        return super.countNonZero(x);
    }

    @Override
    public synchronized void laneRanks(Tile x, Lanes lanes, Tile out) {
        onHost(List.of(x), List.of(out));
        super.laneRanks(x, lanes, out);
    }

    @Override
    public synchronized void dropByProbability(Tile x, Tile p, long key, Rescale mode) {
        onHost(List.of(x, p), List.of(x));
        super.dropByProbability(x, p, key, mode);
    }
}
