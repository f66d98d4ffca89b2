package dev.mergeforge.model.cuda;

import dev.mergeforge.backend.cuda.Device;
import dev.mergeforge.backend.cuda.DeviceBuffer;
import dev.mergeforge.backend.cuda.Gemm;

import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

/**
 * {@link Gemm} as a Java loop over {@link EmulatedDevice} memory (which is host memory), so the
 * whole device forward pass runs without a GPU: each output a float32 sum left to right, as
 * the CPU's MatMul.dot. Counts its calls. Like cuBLAS on the compute stream, it runs after the
 * work queued there before it: it waits for that work, then computes at once.
 */
final class HostGemm implements Gemm {
    private final Device dev;
    int calls;

    HostGemm(Device dev) { this.dev = dev; }

    @Override
    public void linear(DeviceBuffer x, DeviceBuffer w, DeviceBuffer y, int tokens, int in, int out, int ldy) {
        calls++;
        dev.sync();
        if (tokens == 0 || out == 0) return;
        float[] xa = MemorySegment.ofAddress(x.address).reinterpret(4L * tokens * in).toArray(JAVA_FLOAT);
        float[] wa = MemorySegment.ofAddress(w.address).reinterpret(4L * out * in).toArray(JAVA_FLOAT);
        MemorySegment ys = MemorySegment.ofAddress(y.address).reinterpret(4L * ((long) (tokens - 1) * ldy + out));
        for (int t = 0; t < tokens; t++) {
            for (int o = 0; o < out; o++) {
                float s = 0;
                for (int i = 0; i < in; i++) s += xa[t * in + i] * wa[o * in + i];
                ys.setAtIndex(JAVA_FLOAT, (long) t * ldy + o, s);
            }
        }
    }

    @Override
    public void close() { }
}
