package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.Backend;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Runs without a GPU: the host side of each launch (which kernel, argument order and types against
 * the kernel's signature, grid size, values derived on the host) through a recording launcher.
 */
class DeviceOpsLaunchTest {
    record Launch(Kernel k, long grid, int block, Object[] args) {}

    final List<Launch> launches = new ArrayList<>();
    final DeviceOps ops = new DeviceOps(null, null, (k, grid, block, args) -> {
        k.checkLaunch(block, args);
        launches.add(new Launch(k, grid, block, args));
    });

    static DeviceBuffer buf() { return new DeviceBuffer(new DevicePtr(), 1 << 20); }

    Launch only() {
        assertEquals(1, launches.size(), "one launch");
        return launches.removeFirst();
    }

    @Test
    void elementwiseLaunchesCoverTheTile() {
        DeviceBuffer a = buf(), b = buf(), o = buf();
        long n = 100_003;
        ops.sub(a, b, o, n);
        Launch l = only();
        assertEquals(Kernel.SUB, l.k);
        assertEquals(DeviceOps.THREADS, l.block);
        assertEquals((n + 255) / 256, l.grid, "one thread per element below the grid cap");
        assertSame(o, l.args[2]);
        assertEquals(n, l.args[3]);
        // above the cap the grid-stride loop covers the rest
        ops.add(a, b, o, 1L << 40);
        assertEquals(DeviceOps.MAX_GRID, only().grid);
        ops.scale(a, 0.5f, o, 1);
        assertEquals(1, only().grid);
    }

    @Test
    void hostComputedScalarsMatchTheJavaBackend() {
        DeviceBuffer a = buf(), b = buf(), o = buf();
        float t = 0.3f;
        ops.lerp(a, b, t, o, 10);
        Launch l = only();
        assertEquals(1f - t, (float) l.args[2], "u = 1 - t rounded to float32 on the host");
        assertEquals(t, (float) l.args[3]);
        float omega = 0.7f;
        ops.relax(a, b, o, omega, Backend.Axis.ROWS, 17, o, 170);
        l = only();
        assertEquals(1f - omega, (float) l.args[3]);
        assertEquals(1, l.args[4], "ROWS is axis 1 in mf_relax");
        assertEquals(17L, l.args[5]);
        ops.relax(a, b, o, omega, Backend.Axis.COLUMNS, 17, o, 170);
        assertEquals(0, only().args[4]);
        ops.relax(a, b, o, omega, Backend.Axis.ELEMENTS, 17, o, 170);
        assertEquals(2, only().args[4]);
    }

    @Test
    void philoxDropSplitsKeyAndCountsGroupsOfFour() {
        DeviceBuffer x = buf();
        long key = 0xfedcba9876543210L;
        ops.philoxDrop(x, 4L * 256 * 3 + 1, key, 1L << 24);
        Launch l = only();
        assertEquals(Kernel.PHILOX_DROP, l.k);
        assertEquals(4, l.grid, "ceil(769 groups / 256)");
        assertEquals((int) key, l.args[2]);
        assertEquals((int) (key >>> 32), l.args[3]);
        assertEquals(1 << 24, l.args[4]);
    }

    @Test
    void listOpsPassCountAndFlags() {
        DeviceBuffer p = buf(), w = buf(), s = buf(), o = buf();
        ops.weightedSum(p, w, 3, o, 5);
        assertEquals(3, only().args[2]);
        ops.electSign(p, 4, s, 5);
        assertEquals(4, only().args[1]);
        ops.disjointMerge(p, w, 2, s, true, o, 5);
        Launch l = only();
        assertEquals(2, l.args[2]);
        assertEquals(1, l.args[4]);
        ops.load16(true, p, o, 9);
        assertEquals(Kernel.LOAD_BF16, only().k);
        ops.store16(false, p, o, 9);
        assertEquals(Kernel.STORE_F16, only().k);
    }

    @Test
    void wrongArgumentsAreRefusedBeforeLaunch() {
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Kernel.SUB.checkArgs(buf(), buf(), buf(), 5));
        assertTrue(e.getMessage().contains("mf_sub takes (pppl) but was given (pppi)"), e.getMessage());
    }

    @Test
    void exclusivePrefixCountsEqualEntriesBeforeEachChunk() {
        long[] c = {3, 0, 2, 5};
        DeviceRankSelect.exclusivePrefix(c);
        assertEquals(List.of(0L, 3L, 3L, 5L), List.of(c[0], c[1], c[2], c[3]));
    }
}
