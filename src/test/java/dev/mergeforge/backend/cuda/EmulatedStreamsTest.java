package dev.mergeforge.backend.cuda;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

import static java.lang.foreign.ValueLayout.JAVA_INT;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The emulated streams complete out of order unless an event orders them, and work that uses
 * memory the other stream also uses without an event between them fails when it is queued, so host
 * code that forgets a {@code cuStreamWaitEvent} fails on the emulator whatever the seed. (With
 * {@link EmulatedDevice.StreamOrder#RANDOM} each round leaves the copy pending with probability
 * 1/3: 40 rounds all one way happen once in 10^7 runs.)
 */
class EmulatedStreamsTest {
    static final int ROUNDS = 40;
    static final int[] DATA = {1, 2, 3, 4, 5, 6, 7, 8};

    @BeforeEach
    void emulator() {
        Assumptions.assumeTrue(EmulatedDevice.unavailableReason().isEmpty(), () -> EmulatedDevice.unavailableReason().orElse(""));
    }

    static int[] peek(DeviceBuffer b) { return MemorySegment.ofAddress(b.address).reinterpret(4L * DATA.length).toArray(JAVA_INT); }

    /** Whether a prefetch into one buffer is still pending after the compute stream ran work on another. */
    static boolean copyPendingAfterComputeWork(EmulatedDevice dev) {
        DeviceBuffer a = dev.tryAllocate(4L * DATA.length), b = dev.tryAllocate(4L * DATA.length);
        dev.zero(a, 4L * DATA.length);
        dev.sync();
        dev.prefetchUpload(MemorySegment.ofArray(DATA), a);
        dev.upload(MemorySegment.ofArray(DATA), b);
        dev.download(b, MemorySegment.ofArray(new int[DATA.length]));
        boolean pending = peek(a)[0] == 0;
        dev.free(a);
        dev.free(b);
        return pending;
    }

    static int pendingRounds(EmulatedDevice.StreamOrder order) {
        int pending = 0;
        try (EmulatedDevice dev = new EmulatedDevice(order)) {
            for (int r = 0; r < ROUNDS; r++) if (copyPendingAfterComputeWork(dev)) pending++;
        }
        return pending;
    }

    @Test
    void theStreamsCompleteOutOfOrder() {
        int pending = pendingRounds(EmulatedDevice.StreamOrder.RANDOM);
        assertTrue(pending > 0 && pending < ROUNDS, pending + " of " + ROUNDS + " rounds left the copy pending (seed " + EmulatedDevice.SEED + ")");
        assertEquals(ROUNDS, pendingRounds(EmulatedDevice.StreamOrder.COPY_LAGS), "a lagging copy stream runs only when waited for");
        assertEquals(0, pendingRounds(EmulatedDevice.StreamOrder.COMPUTE_LAGS), "copies run at once when the compute stream lags");
    }

    @Test
    void unorderedUsesOfOneBufferFailWhenQueued() {
        for (EmulatedDevice.StreamOrder order : EmulatedDevice.StreamOrder.values()) {
            try (EmulatedDevice dev = new EmulatedDevice(order)) {
                DeviceBuffer b = dev.tryAllocate(4L * DATA.length);
                // a download of a prefetched buffer with no event between: a read that may come first
                dev.prefetchUpload(MemorySegment.ofArray(DATA), b);
                IllegalStateException e = assertThrows(IllegalStateException.class, () -> dev.download(b, MemorySegment.ofArray(new int[DATA.length])));
                assertTrue(e.getMessage().contains("download on the COMPUTE stream uses device memory that prefetch on the COPY stream also uses, and no event orders them"), e.getMessage());
                Device.Event copied = dev.record(Device.Stream.COPY);
                dev.await(Device.Stream.COMPUTE, copied);
                dev.destroy(copied);
                // compute work on a buffer, then a prefetch into it before the compute stream's event
                dev.zero(b, 4L * DATA.length);
                e = assertThrows(IllegalStateException.class, () -> dev.prefetchUpload(MemorySegment.ofArray(DATA), b));
                assertTrue(e.getMessage().contains("prefetch on the COPY stream uses device memory that zero on the COMPUTE stream also uses"), e.getMessage());
                dev.free(b);
            }
        }
    }

    @Test
    void anEventOrdersTheStreams() {
        for (EmulatedDevice.StreamOrder order : EmulatedDevice.StreamOrder.values()) {
            try (EmulatedDevice dev = new EmulatedDevice(order)) {
                for (int r = 0; r < ROUNDS; r++) {
                    DeviceBuffer b = dev.tryAllocate(4L * DATA.length);
                    dev.zero(b, 4L * DATA.length);
                    Device.Event zeroed = dev.record(Device.Stream.COMPUTE);
                    dev.await(Device.Stream.COPY, zeroed);
                    dev.destroy(zeroed);
                    dev.prefetchUpload(MemorySegment.ofArray(DATA), b);
                    Device.Event copied = dev.record(Device.Stream.COPY);
                    dev.await(Device.Stream.COMPUTE, copied);
                    dev.destroy(copied);
                    int[] got = new int[DATA.length];
                    dev.download(b, MemorySegment.ofArray(got));
                    assertArrayEquals(DATA, got, order + " round " + r + " (seed " + EmulatedDevice.SEED + ")");
                    dev.free(b);
                }
                assertEquals(0, dev.liveEvents());
            }
        }
    }
}
