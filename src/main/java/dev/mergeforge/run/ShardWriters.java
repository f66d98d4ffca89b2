package dev.mergeforge.run;

import dev.mergeforge.io.SafetensorsWriter;
import dev.mergeforge.io.ShardPlan;
import dev.mergeforge.io.StreamingWriter;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The default {@link TensorSink}: one {@link StreamingWriter} per shard of the plan, in a folder.
 * A shard whose last tensor is written is finished and closed at once, so that writer blocks do
 * not stay resident for every shard of a large model.
 *
 * <p>Lifetime: owns the writers (their blocks and threads) until {@link #close()}.
 */
final class ShardWriters implements TensorSink, AutoCloseable {
    private final Map<String, StreamingWriter> writerOf = new HashMap<>();
    private final List<StreamingWriter> open = new ArrayList<>();
    // tensors still to write per shard
    private final Map<StreamingWriter, Integer> left = new HashMap<>();

    ShardWriters(Path dir, ShardPlan shards) {
        try {
            for (int s = 0; s < shards.shards().size(); s++) {
                StreamingWriter w = new StreamingWriter(dir.resolve(shards.fileNames().get(s)), shards.shards().get(s), Map.of("format", "pt"));
                open.add(w);
                for (SafetensorsWriter.Entry e : shards.shards().get(s)) writerOf.put(e.name(), w);
                left.put(w, shards.shards().get(s).size());
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    @Override public void write(String name, MemorySegment bytes) { writerOf.get(name).write(name, bytes); }

    @Override
    public boolean fill(String name, long elementBytes, long cutBytes, StreamingWriter.Filler f) {
        return writerOf.get(name).fill(name, elementBytes, cutBytes, f);
    }

    @Override
    public void written(String name) {
        StreamingWriter w = writerOf.get(name);
        int n = left.merge(w, -1, Integer::sum);
        if (n > 0) return;
        open.remove(w);
        try {
            w.finish();
        } finally {
            w.close();
        }
    }

    /** Finishes and closes the shards still open (every tensor is written by now). */
    @Override
    public void finish() {
        while (!open.isEmpty()) {
            StreamingWriter w = open.removeFirst();
            try {
                w.finish();
            } finally {
                w.close();
            }
        }
    }

    @Override
    public void close() {
        for (StreamingWriter w : open) w.close();
        open.clear();
    }
}
