package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.Lanes;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.tensor.Tile;

import java.util.ArrayList;
import java.util.List;

/**
 * The ops the CUDA backend runs on the host with the Java backend's code (no kernel for them yet):
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

    static List<Tile> with(List<Tile> tiles, Tile... more) {
        List<Tile> all = new ArrayList<>(tiles);
        all.addAll(List.of(more));
        return all;
    }

    @Override
    public synchronized void mul(Tile a, Tile b, Tile out) {
        onHost(List.of(a, b), List.of(out));
        super.mul(a, b, out);
    }

    @Override
    public synchronized void div(Tile a, Tile b, Tile out) {
        onHost(List.of(a, b), List.of(out));
        super.div(a, b, out);
    }

    @Override
    public synchronized void abs(Tile x, Tile out) {
        onHost(List.of(x), List.of(out));
        super.abs(x, out);
    }

    @Override
    public synchronized void clamp(Tile x, float lo, float hi, Tile out) {
        onHost(List.of(x), List.of(out));
        super.clamp(x, lo, hi, out);
    }

    @Override
    public synchronized void affine(Tile x, float a, float b, Tile out) {
        onHost(List.of(x), List.of(out));
        super.affine(x, a, b, out);
    }

    @Override
    public synchronized void fill(Tile x, float v) {
        onHost(List.of(), List.of(x));
        super.fill(x, v);
    }

    @Override
    public synchronized void keepWhereNonZero(Tile x, Tile ref, Tile out) {
        onHost(List.of(x, ref), List.of(out));
        super.keepWhereNonZero(x, ref, out);
    }

    @Override
    public synchronized long countNonZero(Tile x) {
        onHost(List.of(x), List.of());
        return super.countNonZero(x);
    }

    @Override
    public synchronized void laneDots(Tile a, Tile b, Lanes lanes, double[] out) {
        onHost(List.of(a, b), List.of());
        super.laneDots(a, b, lanes, out);
    }

    @Override
    public synchronized void laneScale(Tile x, float[] s, Lanes lanes, Tile out) {
        onHost(List.of(x), List.of(out));
        super.laneScale(x, s, lanes, out);
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

    @Override
    public synchronized void disjointDivisor(List<Tile> weighted, float[] w, Tile sign, Tile out) {
        onHost(with(weighted, sign), List.of(out));
        super.disjointDivisor(weighted, w, sign, out);
    }
}
