package dev.mergeforge.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Disk reads of this process's finished children, from {@code getrusage(RUSAGE_CHILDREN)}: the
 * blocks a merge really read from the disk (page-cache hits are not counted), taken as the
 * difference around one child merge. Linux x86-64/aarch64 layout of {@code struct rusage}; -1
 * where the call is unavailable.
 */
final class ChildUsage {
    private static final int RUSAGE_CHILDREN = -1;
    /** Offset of ru_inblock: two struct timevals (16 bytes each), then 7 longs before it. */
    private static final long INBLOCK = 32 + 7 * 8;
    private static final long SIZE = 32 + 14 * 8;
    private static final MethodHandle GETRUSAGE = lookup();

    private ChildUsage() {}

    private static MethodHandle lookup() {
        try {
            Linker l = Linker.nativeLinker();
            return l.defaultLookup().find("getrusage").map(a -> l.downcallHandle(a,
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS))).orElse(null);
        } catch (Throwable t) {
            return null;
        }
    }

    /** Bytes the waited-for children read from block devices so far (512-byte blocks), or -1 when unknown. */
    static long diskReadBytes() {
        if (GETRUSAGE == null) return -1;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment ru = a.allocate(SIZE, 8);
            int rc = (int) GETRUSAGE.invokeExact(RUSAGE_CHILDREN, ru);
            return rc == 0 ? ru.get(ValueLayout.JAVA_LONG, INBLOCK) * 512 : -1;
        } catch (Throwable t) {
            return -1;
        }
    }
}
