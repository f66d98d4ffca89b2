package dev.mergeforge.model;

import dev.mergeforge.tensor.TensorView;
import org.junit.jupiter.api.Assumptions;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/** The shared tiny model zoo (shared/zoo); tests that need it are skipped with a reason when absent. */
public final class Zoo {
    private Zoo() {}

    public static Path dir() {
        String shared = System.getProperty("mergeforge.shared", "../shared");
        Path zoo = Path.of(shared).resolve("zoo");
        Assumptions.assumeTrue(Files.isDirectory(zoo.resolve("base")), "zoo not found at " + zoo);
        return zoo;
    }

    public static float[] floats(TensorView t) {
        return t.data().toArray(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN));
    }

    public static long[] longs(TensorView t) {
        return t.data().toArray(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN));
    }
}
