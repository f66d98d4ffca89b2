package dev.mergeforge.backend.cuda;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The emulated streams complete out of order unless an event orders them, so host code that
 * forgets a {@code cuStreamWaitEvent} between the copy and the compute stream fails on the emulator
 * as it would on a GPU. (With {@link EmulatedDevice.StreamOrder#RANDOM} each unordered round sees
 * the copy not yet done with probability 1/3, so 40 rounds all seeing it done happen once in 10^7
 * runs, and all seeing it pending once in 10^19.)
 */
class EmulatedStreamsTest {
    static final int ROUNDS = 40;

    @BeforeEach
    void emulator() {
        Assumptions.assumeTrue(EmulatedDevice.unavailableReason().isEmpty(), () -> EmulatedDevice.unavailableReason().orElse(""));
    }

    /** Prefetches {1..16} into a fresh buffer, optionally orders the compute stream after it, downloads. */
    static int[] prefetchThenRead(EmulatedDevice dev, boolean ordered) {
        int[] want = new int[16];
        for (int i = 0; i < want.length; i++) want[i] = i + 1;
        DeviceBuffer b = dev.tryAllocate(4L * want.length);
        dev.zero(b, 4L * want.length);
        dev.sync();
        dev.prefetchUpload(MemorySegment.ofArray(want), b);
        if (ordered) {
            Device.Event e = dev.record(Device.Stream.COPY);
            dev.await(Device.Stream.COMPUTE, e);
            dev.destroy(e);
        }
        int[] got = new int[want.length];
        dev.download(b, MemorySegment.ofArray(got));
        dev.free(b);
        return got;
    }

    static int staleRounds(EmulatedDevice.StreamOrder order) {
        int stale = 0;
        try (EmulatedDevice dev = new EmulatedDevice(order)) {
            for (int r = 0; r < ROUNDS; r++) if (prefetchThenRead(dev, false)[0] == 0) stale++;
        }
        return stale;
    }

    @Test
    void withoutAnEventTheComputeStreamCanRunAheadOfTheCopy() {
        int stale = staleRounds(EmulatedDevice.StreamOrder.RANDOM);
        assertTrue(stale > 0, "the download never overtook the unordered prefetch (seed " + EmulatedDevice.SEED + ")");
        assertTrue(stale < ROUNDS, "the copy stream never ran before the download (seed " + EmulatedDevice.SEED + ")");
        assertEquals(ROUNDS, staleRounds(EmulatedDevice.StreamOrder.COPY_LAGS), "a lagging copy stream runs only when waited for");
        assertEquals(0, staleRounds(EmulatedDevice.StreamOrder.COMPUTE_LAGS), "an eager copy stream is done before the download");
    }

    @Test
    void anEventOrdersTheStreams() {
        for (EmulatedDevice.StreamOrder order : EmulatedDevice.StreamOrder.values()) {
            try (EmulatedDevice dev = new EmulatedDevice(order)) {
                for (int r = 0; r < ROUNDS; r++) {
                    int[] got = prefetchThenRead(dev, true);
                    assertArrayEquals(new int[] {1, 2, 3, 4}, java.util.Arrays.copyOf(got, 4), order + " round " + r + " (seed " + EmulatedDevice.SEED + ")");
                }
                assertEquals(0, dev.liveEvents());
            }
        }
    }
}
