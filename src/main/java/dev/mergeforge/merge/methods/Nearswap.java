package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.merge.chunk.ChunkProgram;
import dev.mergeforge.merge.chunk.ChunkedMethod;
import dev.mergeforge.merge.chunk.TensorSetup;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;
import dev.mergeforge.tensor.Tile;

import java.util.List;

/**
 * NearSwap (alchemonaut, QuartetAnemoi-70B-t0.0001; mergekit's {@code nearswap.py}): take the other
 * model's value where it is already close to the base. Per element, w = clamp(t / max(|a − b|, 1e-6),
 * 0, 1) and out = w·b + (1 − w)·a, a the base, b the other model, all in float32 as mergekit.
 */
public record Nearswap(double t) implements ChunkedMethod {

    public static final MethodSpec SPEC = new MethodSpec("nearswap",
            "per element, move the base toward the other model where they are within about t",
            "https://huggingface.co/alchemonaut/QuartetAnemoi-70B-t0.0001", MethodSpec.BaseUse.REQUIRED, 1, 1,
            List.of(ParamSpec.number("t", null, "similarity scale: w = clamp(t / |base - other|, 0, 1)")),
            List.of(),
            g -> new Nearswap(g.number("t")));

    public Nearswap {
        if (!Double.isFinite(t)) throw new IllegalArgumentException("t must be finite, got " + t);
    }

    @Override
    public void merge(MergeContext ctx, MergeInputs in, Tile out) {
        Backend be = ctx.backend();
        Tile a = TaskVectors.base(in, "nearswap");
        int[] idx = in.nonBase();
        if (idx.length == 0) { be.scale(a, 1f, out); return; }
        Tile b = in.models().get(idx[0]);
        Tile w = ctx.scratch(out.shape());
        try {
            // w = clamp(t / clamp(|a − b|, 1e-6), 0, 1)
            be.sub(a, b, w);
            be.abs(w, w);
            be.clamp(w, 1e-6f, Float.POSITIVE_INFINITY, w);
            be.fill(out, (float) t);
            be.div(out, w, w);
            be.clamp(w, 0f, 1f, w);
            // out = w·b + (1 − w)·a
            be.mul(w, b, out);
            be.affine(w, -1f, 1f, w);
            be.mul(w, a, w);
            be.add(out, w, out);
        } finally {
            ctx.release(w);
        }
    }

    /** Elementwise, so one combine pass: the same ops on each chunk. */
    @Override
    public ChunkProgram program(TensorSetup in) {
        if (!in.hasBase()) throw new ConfigException("nearswap needs base_model (tensor " + in.tensor() + "); add base_model: to the config");
        int[] idx = in.nonBase();
        if (idx.length == 0) return new ChunkProgram(1, 0, List.of(), (ops, c, out) -> ops.scale(c.base(), 1f, out));
        int j = idx[0];
        return new ChunkProgram(1, 1, List.of(), (ops, c, out) -> {
            Tile a = c.base(), b = c.model(j), w = c.scratch(0);
            // w = clamp(t / clamp(|a − b|, 1e-6), 0, 1)
            ops.sub(a, b, w);
            ops.abs(w, w);
            ops.clamp(w, 1e-6f, Float.POSITIVE_INFINITY, w);
            ops.fill(out, (float) t);
            ops.div(out, w, w);
            ops.clamp(w, 0f, 1f, w);
            // out = w·b + (1 − w)·a
            ops.mul(w, b, out);
            ops.affine(w, -1f, 1f, w);
            ops.mul(w, a, w);
            ops.add(out, w, out);
        });
    }
}
