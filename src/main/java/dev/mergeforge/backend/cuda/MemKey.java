package dev.mergeforge.backend.cuda;

import java.lang.foreign.MemorySegment;

/**
 * Which host memory a segment covers: its heap array (compared by identity; null for native
 * memory), its address (the offset inside the array for heap memory) and its size. Two tiles over
 * the same memory have equal keys.
 */
record MemKey(Object heap, long address, long bytes) {
    static MemKey of(MemorySegment s) { return new MemKey(s.heapBase().orElse(null), s.address(), s.byteSize()); }
}
