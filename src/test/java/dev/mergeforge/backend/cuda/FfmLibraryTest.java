package dev.mergeforge.backend.cuda;

import dev.mergeforge.errors.MergeforgeException;
import org.junit.jupiter.api.Test;

import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The part the cuBLAS and cuSOLVER bindings share, on a library no machine has and on fake status codes. */
class FfmLibraryTest {
    private static final FfmLibrary<Object> ABSENT = new FfmLibrary<>("cuNOTHING",
            new String[] {"libcunothing.so.2", "libcunothing.so.1"}, s -> new Object(), s -> "NAME_" + s);

    @Test
    void aMissingLibraryIsAOneLineReasonNamingTheFix() {
        String why = "no cuNOTHING library (libcunothing.so.2 or libcunothing.so.1 not found): "
                + "install the CUDA toolkit's cuNOTHING or add its directory to LD_LIBRARY_PATH";
        assertEquals(Optional.of(why), ABSENT.unavailableReason());
        assertEquals(Optional.empty(), ABSENT.libraryName());
        MergeforgeException e = assertThrows(MergeforgeException.class, ABSENT::functions);
        assertEquals("cuNOTHING is unavailable: " + why, e.getMessage());
    }

    @Test
    void aNonZeroStatusNamesTheCallAndTheStatus() {
        ABSENT.call("ok()", () -> 0);
        MergeforgeException e = assertThrows(MergeforgeException.class, () -> ABSENT.call("f(n=3)", () -> 7));
        assertEquals("f(n=3) returned cuNOTHING status 7 (NAME_7)", e.getMessage());
    }

    @Test
    void onlyCheckedThrowablesAreWrapped() {
        Exception checked = new Exception("boom");
        MergeforgeException e = assertThrows(MergeforgeException.class, () -> ABSENT.call("g", () -> { throw checked; }));
        assertEquals("g failed: " + checked, e.getMessage());
        assertSame(checked, e.getCause());
        IllegalStateException raw = new IllegalStateException("as is");
        assertSame(raw, assertThrows(IllegalStateException.class, () -> ABSENT.call("h", () -> { throw raw; })));
    }
}
