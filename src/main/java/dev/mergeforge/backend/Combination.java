package dev.mergeforge.backend;

import dev.mergeforge.tensor.Tile;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * An elementwise program that linear merging and task arithmetic reduce to, optionally followed by
 * the AIM relaxation:
 * <pre>
 *   t_j = x_j            (or x_j - base when taskVectors)
 *   acc = w_0 t_0 + w_1 t_1 + ...      left to right, each product rounded (weightedSum)
 *   acc = s_q * acc      for each scale s_q in order
 *   out = acc            (or base + acc when taskVectors)
 *   out = relax(base, out)             when relax is given ({@link Backend#relax})
 * </pre>
 * {@link #run} executes it with backend ops on float32 tiles: the reference. A backend may instead
 * compute it straight from the stored tensors ({@link Backend#combineStored}) with the same bits.
 *
 * @param weights     one per input model, in order
 * @param taskVectors whether the inputs are taken relative to a base (then a base is required)
 * @param scales      factors applied after the sum, in order (normalisation, λ)
 * @param relax       the AIM relaxation toward the base as the last step, or null
 */
public record Combination(float[] weights, boolean taskVectors, float[] scales, Relax relax) {

    /**
     * The AIM relaxation of {@link Backend#relax}: importance per input channel along {@code axis}
     * of a tensor whose last dimension is {@code cols}.
     */
    public record Relax(float[] importance, float omega, Backend.Axis axis, long cols) {
        public Relax {
            importance = importance.clone();
            if (cols <= 0) throw new IllegalArgumentException("cols must be > 0, got " + cols);
        }

        /**
         * Checks a chunk of {@code n} elements at tensor index {@code offset} ({@link ChunkOps#relax}):
         * whole rows along {@link Backend.Axis#COLUMNS} and {@link Backend.Axis#ROWS}, its channels
         * inside the importance vector.
         */
        public void checkChunk(long offset, long n) {
            boolean rows = axis != Backend.Axis.ELEMENTS;
            if (offset < 0 || n < 0 || rows && (offset % cols != 0 || n % cols != 0)
                    || firstChannel(offset) + chunkChannels(n) > importance.length) {
                throw new IllegalArgumentException("relax of elements [" + offset + ", " + (offset + n) + ") along " + axis + " with " + cols
                        + " columns and " + importance.length + " channels" + (rows ? " (chunks must hold whole rows)" : ""));
            }
        }

        /**
         * What a chunk's relax kernel reads: the importance of channels [firstChannel, firstChannel +
         * channels) and the row length it indexes them by (along ELEMENTS the chunk is one row of its
         * own: channel i of the slice for element i).
         */
        public record Window(long firstChannel, long channels, long cols) { }

        /** Checks a chunk ({@link #checkChunk}) and returns its {@link Window}. */
        public Window window(long offset, long n) {
            checkChunk(offset, n);
            return new Window(firstChannel(offset), chunkChannels(n), axis == Backend.Axis.ELEMENTS ? n : cols);
        }

        /** The channel element {@code offset} (a row start unless along ELEMENTS) lies on: where a chunk's importance starts. */
        private long firstChannel(long offset) {
            return switch (axis) {
                case COLUMNS -> 0;
                case ROWS -> offset / cols;
                case ELEMENTS -> offset;
            };
        }

        /** How many channels a chunk of {@code n} elements (whole rows unless along ELEMENTS) reads. */
        private long chunkChannels(long n) {
            return switch (axis) {
                case COLUMNS -> cols;
                case ROWS -> n / cols;
                case ELEMENTS -> n;
            };
        }
    }

    public Combination {
        if (weights.length == 0) throw new IllegalArgumentException("a combination needs at least one input");
        weights = weights.clone();
        scales = scales.clone();
    }

    public Combination(float[] weights, boolean taskVectors, float[] scales) { this(weights, taskVectors, scales, null); }

    /** The same program with the AIM relaxation as its last step. */
    public Combination withRelax(Relax r) { return new Combination(weights, taskVectors, scales, r); }

    /** Whether the program reads the base model's tensor (task vectors or the relaxation). */
    public boolean readsBase() { return taskVectors || relax != null; }

    /**
     * Runs the program with separate ops. Overwrites the model tiles with their task vectors when
     * {@code taskVectors}; never writes {@code base}. {@code out} may alias the first model only.
     */
    public void run(Backend b, List<Tile> models, Tile base, Tile out) {
        if (models.size() != weights.length) throw new IllegalArgumentException(models.size() + " models for " + weights.length + " weights");
        if (readsBase() && base == null) throw new IllegalArgumentException("this combination needs the base");
        List<Tile> terms = new ArrayList<>(models);
        if (taskVectors) {
            // t_j = x_j - base
            for (Tile m : terms) b.sub(m, base, m);
        }
        // acc = sum_j w_j t_j
        b.weightedSum(terms, weights, out);
        // acc = s_q * acc
        for (float s : scales) b.scale(out, s, out);
        // out = base + acc
        if (taskVectors) b.add(base, out, out);
        // AIM: out = base + (out - base) * (1 - (1 - omega) * I)
        if (relax != null) b.relax(base, out, Tile.ofArray(relax.importance()), relax.omega(), relax.axis(), out);
    }

    @Override
    public String toString() {
        return "Combination[weights=" + Arrays.toString(weights) + ", taskVectors=" + taskVectors + ", scales=" + Arrays.toString(scales)
                + (relax == null ? "" : ", relax omega=" + relax.omega() + " along " + relax.axis()) + "]";
    }
}
