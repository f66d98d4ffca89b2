package dev.mergeforge.run;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.io.StreamingWriter;
import dev.mergeforge.tensor.TensorView;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A merge that feeds a forward pass stage by stage instead of keeping the model: the plan's tensors
 * are merged in the order of the caller's stages (embeddings, then each decoder layer, then the final
 * norm and head), each stage's tensors held in memory in their output dtypes ({@link MemoryModel})
 * until the stage is complete, then handed to {@link Stage#run} and freed before the next stage's
 * first tensor is merged. So at most one stage's merged tensors are alive at a time. Each tensor is
 * merged by {@link Merger}'s usual path into the same bytes a merge to disk writes
 * (docs/protocol.md, {@code merge_eval}, "layer by layer").
 *
 * <p>Lifetime: the views given to {@link Stage#run} are valid during that call only.
 */
public final class LayerFeed implements TensorSink {
    /** What runs on one stage's merged tensors (by name), as soon as the stage is complete. */
    @FunctionalInterface
    public interface Stage {
        void run(int stage, Map<String, TensorView> tensors);
    }

    /**
     * A finished layer-by-layer merge: the merge's report, the most bytes of merged tensors held at
     * once (one stage's), and the seconds spent in {@link Stage#run} (included in the merge's seconds).
     */
    public record Result(Merger.Result merge, long peakHeldBytes, double stageSeconds) {}

    private final List<List<PlannedTensor>> stages;
    private final Stage use;
    private final ObjectNode config;
    private int at;
    private MemoryModel current;
    private long peakHeld;
    private long stageNanos;

    private LayerFeed(List<List<PlannedTensor>> stages, Stage use, ObjectNode config) {
        this.stages = stages;
        this.use = use;
        this.config = config;
    }

    /**
     * Merges the tensors {@code stageNames} lists, stage after stage (a name may appear in two
     * stages, a tied head's embeddings: it is merged twice), running {@code use} on each complete stage.
     * A name the plan lacks is a {@link CheckpointException} before anything is merged.
     */
    public static Result run(Planner.Plan plan, Planner.Inputs inputs, Merger.Options o, List<List<String>> stageNames, Stage use) {
        Map<String, PlannedTensor> byName = new HashMap<>();
        for (PlannedTensor t : plan.tensors()) byName.put(t.name(), t);
        List<List<PlannedTensor>> stages = new ArrayList<>();
        List<PlannedTensor> order = new ArrayList<>();
        for (List<String> names : stageNames) {
            List<PlannedTensor> s = new ArrayList<>();
            for (String n : names) {
                PlannedTensor t = byName.get(n);
                if (t == null) {
                    throw new CheckpointException("the merged candidate has no tensor '" + n + "', which its forward pass reads; "
                            + "check that the config merges a complete model of a supported family (docs/architectures.md)");
                }
                s.add(t);
            }
            stages.add(s);
            order.addAll(s);
        }
        LayerFeed feed = new LayerFeed(stages, use, outputConfig(plan));
        try {
            feed.advance();
            Merger.Result r = Merger.runInto(plan, order, inputs, feed, o);
            return new Result(r, feed.peakHeld, feed.stageNanos / 1e9);
        } finally {
            feed.close();
        }
    }

    /** What the merged model's config.json says (as the output folder's would). */
    public static ObjectNode outputConfig(Planner.Plan plan) { return OutputFiles.outputConfig(plan, Merger.dominantDtype(plan)); }

    /** The names of each output layer's tensors, layer 0 first, each in plan order. */
    public static List<List<String>> layerStages(Planner.Plan plan) {
        List<List<String>> layers = new ArrayList<>();
        for (int i = 0; i < plan.outLayers(); i++) layers.add(new ArrayList<>());
        for (PlannedTensor t : plan.tensors()) {
            if (t.layer() >= 0 && t.layer() < layers.size()) layers.get(t.layer()).add(t.name());
        }
        return layers;
    }

    /** Opens the current stage's memory, running any stage that has no tensors at once. */
    private void advance() {
        while (at < stages.size() && stages.get(at).isEmpty()) runStage(Map.of());
        if (at < stages.size()) current = new MemoryModel(stages.get(at), config, null);
    }

    private void runStage(Map<String, TensorView> tensors) {
        long t0 = System.nanoTime();
        use.run(at, tensors);
        stageNanos += System.nanoTime() - t0;
        at++;
    }

    private MemoryModel current(String name) {
        if (current == null) throw new IllegalStateException("tensor '" + name + "' merged after the last stage");
        return current;
    }

    @Override
    public void write(String name, MemorySegment bytes) { current(name).write(name, bytes); }

    @Override
    public boolean fill(String name, long elementBytes, long cutBytes, StreamingWriter.Filler f) {
        return current(name).fill(name, elementBytes, cutBytes, f);
    }

    /** After a stage's last tensor: runs the stage, frees its tensors and opens the next. */
    @Override
    public void written(String name) {
        MemoryModel m = current(name);
        if (m.tensors().size() < stages.get(at).size()) return;
        peakHeld = Math.max(peakHeld, m.bytes());
        try {
            runStage(m.tensors());
        } finally {
            m.close();
            current = null;
        }
        advance();
    }

    @Override
    public void finish() {
        if (at != stages.size()) throw new IllegalStateException("the merge ended at stage " + at + " of " + stages.size());
    }

    private void close() {
        if (current != null) current.close();
        current = null;
    }
}
