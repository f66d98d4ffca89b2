package dev.mergeforge.backend.cuda.cusolver;

import dev.mergeforge.errors.MergeforgeException;
import org.junit.jupiter.api.Test;

import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Runs everywhere: the cuSOLVER binding reports a missing library as a one-line reason, never a crash. */
class CusolverTest {

    @Test
    void availabilityIsConsistent() {
        Optional<String> why = Cusolver.unavailableReason();
        assertEquals(why.isEmpty(), Cusolver.libraryName().isPresent(), "a reason exactly when no library was bound");
        why.ifPresent(r -> assertTrue(!r.contains("\n") && r.contains("libcusolver.so.12") && r.contains("libcusolver.so.11")
                && r.contains("LD_LIBRARY_PATH"), r));
        Cusolver.libraryName().ifPresent(l -> assertTrue(l.equals("libcusolver.so.12") || l.equals("libcusolver.so.11"), l));
    }

    @Test
    void createWithoutLibraryThrowsTheReason() {
        Optional<String> why = Cusolver.unavailableReason();
        if (why.isEmpty()) return; // bound: CudaDenseSolverGpuTest runs potrf/potrs
        MergeforgeException e = assertThrows(MergeforgeException.class, Cusolver::create);
        assertEquals("cuSOLVER is unavailable: " + why.get(), e.getMessage());
    }

    @Test
    void statusNamesSayWhatToCheck() {
        assertTrue(Cusolver.statusName(3).contains("leading dimensions"));
        assertTrue(Cusolver.statusName(2).contains("out of GPU memory"));
        assertEquals("unknown", Cusolver.statusName(99));
    }
}
