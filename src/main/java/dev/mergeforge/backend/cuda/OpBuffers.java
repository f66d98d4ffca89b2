package dev.mergeforge.backend.cuda;

import dev.mergeforge.tensor.Tile;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The device buffers of one {@link CudaBackend} op. Native tiles go through {@link Residency} (they
 * stay on the device after the op); heap tiles get temporary buffers, one per memory so that an
 * aliased input and output share it, uploaded when read and downloaded when the op ends if
 * written. Temporaries and buffers the residency retired during the op go back to the pool when
 * it ends, also on failure.
 */
final class OpBuffers implements AutoCloseable {
    private final Device dev;
    private final DeviceBufferPool pool;
    private final Residency residency;
    private final Map<MemKey, DeviceBuffer> heap = new HashMap<>();
    private final Map<MemKey, Tile> heapWritten = new LinkedHashMap<>();
    private final List<DeviceBuffer> temps = new ArrayList<>();

    OpBuffers(Device dev, DeviceBufferPool pool, Residency residency) {
        this.dev = dev;
        this.pool = pool;
        this.residency = residency;
        dev.makeCurrent();
    }

    /** A scratch buffer for this op only. */
    DeviceBuffer temp(long bytes, String what) {
        DeviceBuffer b = pool.borrow(bytes, what);
        temps.add(b);
        return b;
    }

    /** Hands a borrowed buffer to this op, which returns it to the pool at its end. */
    DeviceBuffer keep(DeviceBuffer b) {
        temps.add(b);
        return b;
    }

    /** A buffer holding t's current values. */
    DeviceBuffer read(Tile t) {
        if (Residency.kept(t)) return residency.read(t);
        MemKey k = MemKey.of(t.data());
        DeviceBuffer b = heap.get(k);
        if (b == null) {
            b = temp(t.data().byteSize(), "tile " + t);
            dev.upload(t.data(), b);
            heap.put(k, b);
        }
        return b;
    }

    List<DeviceBuffer> readAll(List<Tile> ts) {
        List<DeviceBuffer> out = new ArrayList<>(ts.size());
        for (Tile t : ts) out.add(read(t));
        return out;
    }

    /** The buffer t's new values are written to; call it after every {@link #read} of the op, so an aliased input shares it. */
    DeviceBuffer write(Tile t) {
        if (Residency.kept(t)) return residency.write(t);
        MemKey k = MemKey.of(t.data());
        DeviceBuffer b = heap.get(k);
        if (b == null) {
            b = temp(t.data().byteSize(), "tile " + t);
            heap.put(k, b);
        }
        heapWritten.put(k, t);
        return b;
    }

    /**
     * One grid-stride launch of kernel k over n elements with arguments (reads..., scalars...,
     * out, n): the inputs are read first, then the output taken for writing, so an output that
     * aliases an input shares its buffer.
     */
    void elementwise(Kernel k, long n, List<Tile> reads, Tile out, Object... scalars) {
        if (n == 0) return;
        Object[] args = new Object[reads.size() + scalars.length + 2];
        int a = 0;
        for (Tile t : reads) args[a++] = read(t);
        for (Object s : scalars) args[a++] = s;
        args[a++] = write(out);
        args[a] = n;
        dev.launch(k, DeviceOps.grid(n, DeviceOps.THREADS), DeviceOps.THREADS, args);
    }

    /** Read, then written in place. */
    DeviceBuffer update(Tile t) {
        read(t);
        return write(t);
    }

    @Override
    public void close() {
        try {
            for (Map.Entry<MemKey, Tile> e : heapWritten.entrySet()) dev.download(heap.get(e.getKey()), e.getValue().data());
        } finally {
            for (DeviceBuffer b : temps) pool.release(b);
            residency.flush();
        }
    }
}
