package dev.mergeforge.backend.cuda.cublas;

import dev.mergeforge.errors.MergeforgeException;
import org.junit.jupiter.api.Test;

import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Runs everywhere: the cuBLAS binding reports a missing library as a reason, never a crash. */
class CublasTest {

    @Test
    void availabilityIsConsistent() {
        Optional<String> why = Cublas.unavailableReason();
        assertEquals(why.isEmpty(), Cublas.libraryName().isPresent(), "a reason exactly when no library was bound");
        why.ifPresent(r -> assertTrue(!r.contains("\n") && r.contains("libcublas.so"), r));
        Cublas.libraryName().ifPresent(l -> assertTrue(l.equals("libcublas.so.13") || l.equals("libcublas.so.12"), l));
    }

    @Test
    void createWithoutLibraryThrowsTheReason() {
        Optional<String> why = Cublas.unavailableReason();
        if (why.isEmpty()) return; // bound: CublasGpuTest runs sgemm
        MergeforgeException e = assertThrows(MergeforgeException.class, Cublas::create);
        assertEquals("cuBLAS is unavailable: " + why.get(), e.getMessage());
    }

    @Test
    void statusNamesSayWhatToCheck() {
        assertTrue(Cublas.statusName(7).contains("leading dimensions"));
        assertEquals("unknown", Cublas.statusName(99));
    }
}
