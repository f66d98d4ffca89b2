package dev.mergeforge.run;

import dev.mergeforge.io.SafetensorsWriter;
import dev.mergeforge.io.ShardPlan;
import dev.mergeforge.io.StreamingWriter;

import dev.mergeforge.tensor.MemoryLedger;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The default {@link TensorSink}: one {@link StreamingWriter} per shard of the plan, in a folder.
 * A shard whose last tensor is written is finished and closed at once, so that writer blocks do
 * not stay resident for every shard of a large model.
 *
 * <p>Lifetime: owns the writers (their blocks and threads) until {@link #close()}.
 */
final class ShardWriters implements TensorSink, AutoCloseable {
    private final Path dir;
    private final ShardPlan shards;
    private final MemoryLedger ledger;
    private final Map<String, Integer> shardOf = new HashMap<>();
    private final Map<Integer, StreamingWriter> open = new LinkedHashMap<>();
    // tensors still to write per shard
    private final int[] left;

    ShardWriters(Path dir, ShardPlan shards) { this(dir, shards, MemoryLedger.unlimited()); }

    /**
     * Writers are opened when their shard's first tensor comes (shards are written in plan order, so
     * one or two are open at once) and counted in {@code ledger}: two blocks each.
     */
    ShardWriters(Path dir, ShardPlan shards, MemoryLedger ledger) {
        this.dir = dir;
        this.shards = shards;
        this.ledger = ledger;
        this.left = new int[shards.shards().size()];
        for (int s = 0; s < left.length; s++) {
            for (SafetensorsWriter.Entry e : shards.shards().get(s)) shardOf.put(e.name(), s);
            left[s] = shards.shards().get(s).size();
        }
    }

    private StreamingWriter writerOf(String name) {
        Integer s = shardOf.get(name);
        if (s == null) throw new IllegalStateException("tensor '" + name + "' is in no shard of the plan");
        StreamingWriter w = open.get(s);
        if (w == null) {
            if (left[s] == 0) throw new IllegalStateException("shard " + shards.fileNames().get(s) + " is already finished");
            w = new StreamingWriter(dir.resolve(shards.fileNames().get(s)), shards.shards().get(s), Map.of("format", "pt"));
            open.put(s, w);
            ledger.charge(w.bufferBytes(), "the writer of " + shards.fileNames().get(s));
        }
        return w;
    }

    @Override public void write(String name, MemorySegment bytes) { writerOf(name).write(name, bytes); }

    @Override
    public boolean fill(String name, long elementBytes, long cutBytes, StreamingWriter.Filler f) {
        return writerOf(name).fill(name, elementBytes, cutBytes, f);
    }

    @Override
    public void written(String name) {
        int s = shardOf.get(name);
        if (--left[s] > 0) return;
        StreamingWriter w = open.remove(s);
        if (w != null) finish(w);
    }

    /** Finishes and closes the shards still open (every tensor is written by now). */
    @Override
    public void finish() {
        for (int s = 0; s < left.length; s++) {
            if (left[s] > 0) throw new IllegalStateException(left[s] + " planned tensors of " + shards.fileNames().get(s) + " were never written");
        }
        while (!open.isEmpty()) {
            var e = open.entrySet().iterator().next();
            open.remove(e.getKey());
            finish(e.getValue());
        }
    }

    private void finish(StreamingWriter w) {
        try {
            w.finish();
        } finally {
            closeOne(w);
        }
    }

    private void closeOne(StreamingWriter w) {
        try {
            w.close();
        } finally {
            ledger.credit(w.bufferBytes());
        }
    }

    @Override
    public void close() {
        for (StreamingWriter w : open.values()) closeOne(w);
        open.clear();
    }
}
