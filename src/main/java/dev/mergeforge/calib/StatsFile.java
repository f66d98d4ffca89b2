package dev.mergeforge.calib;

import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.io.SafetensorsFile;
import dev.mergeforge.io.SafetensorsWriter;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * A calibration statistics file (docs/aim-stats.md): safetensors with one 1-D float32 vector per
 * weight name and string metadata (model, data fingerprint, samples, seq_len, stat).
 */
public record StatsFile(Map<String, float[]> vectors, Map<String, String> metadata) {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Metadata keys every stats file written here carries. */
    public static final String MODEL = "model", FINGERPRINT = "data_fingerprint", SAMPLES = "samples",
            SEQ_LEN = "seq_len", STAT = "stat", FORMAT = "format";

    public StatsFile {
        vectors = new TreeMap<>(vectors);
        metadata = new TreeMap<>(metadata);
    }

    /** Writes atomically: a temporary file in the same folder, then a rename. */
    public void write(Path path) {
        List<SafetensorsWriter.Entry> entries = new ArrayList<>();
        vectors.forEach((n, v) -> entries.add(new SafetensorsWriter.Entry(n, DType.F32, Shape.of(v.length))));
        Path tmp = path.resolveSibling(path.getFileName() + ".tmp-" + ProcessHandle.current().pid());
        try {
            Files.deleteIfExists(tmp);
            try (SafetensorsWriter w = new SafetensorsWriter(tmp, entries, metadata)) {
                vectors.forEach((n, v) -> MemorySegment.copy(v, 0, w.slot(n), F32, 0, v.length));
            }
            Files.move(tmp, path, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write stats file " + path + ": " + e.getMessage(), e);
        }
    }

    /** Reads a stats file written by mergeforge or any tool following docs/aim-stats.md. */
    public static StatsFile read(Path path) {
        try (SafetensorsFile f = SafetensorsFile.open(path)) {
            Map<String, float[]> v = new LinkedHashMap<>();
            for (String n : f.names()) {
                TensorView t = f.tensor(n);
                if (t.dtype() != DType.F32 || t.shape().dims().length != 1) {
                    throw new CheckpointException(path + ": stats tensor '" + n + "' is " + t.dtype() + t.shape()
                            + "; a stats file holds 1-D F32 vectors only (see docs/aim-stats.md)");
                }
                v.put(n, t.data().toArray(F32));
            }
            return new StatsFile(v, f.metadata());
        }
    }
}
