package dev.mergeforge.merge.methods;

import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.merge.MergeContext;
import dev.mergeforge.merge.MergeInputs;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;
import dev.mergeforge.merge.Params;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import dev.mergeforge.tensor.TilePool;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** Runs a method the way the Merger does (defaults applied per spec, fresh model tiles) and checks tolerances. */
final class Harness {
    static final String TENSOR = "model.layers.3.mlp.down_proj.weight";

    private Harness() {}

    /** Small grid values k/8, k in [-16, 16]: sums and differences are exact in float32 and double. */
    static float[] grid(SplittableRandom r, int n, double zeroFraction) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = r.nextDouble() < zeroFraction ? 0f : (r.nextInt(33) - 16) / 8f;
        return x;
    }

    static int numel(long[] dims) { int n = 1; for (long d : dims) n *= (int) d; return n; }

    static double[] d(float[] x) { double[] o = new double[x.length]; for (int i = 0; i < x.length; i++) o[i] = x[i]; return o; }

    static Params params(List<ParamSpec> specs, Map<String, Object> given, String where) {
        Map<String, Object> v = new LinkedHashMap<>();
        for (String k : given.keySet()) {
            assertTrue(specs.stream().anyMatch(p -> p.name().equals(k)), "test passes unknown parameter " + k);
        }
        for (ParamSpec p : specs) {
            Object x = given.containsKey(p.name()) ? given.get(p.name()) : p.dflt();
            if (x != null) {
                assertNull(p.check(x), "parameter " + p.name() + " = " + x);
                v.put(p.name(), p.type() == ParamSpec.Type.STRING ? x.toString() : x);
            }
        }
        return new Params(v, where);
    }

    record Result(float[] out, List<String> notes) {}

    /**
     * @param base      base values or null
     * @param models    model values in config order (the base's values at baseIndex when listed)
     * @param baseIndex index of the base in models, or -1
     */
    static Result run(MethodSpec spec, Map<String, Object> global, long[] dims, float[] base, float[][] models,
                      List<Map<String, Object>> perModel, int baseIndex, long seed) {
        Shape shape = Shape.of(dims);
        List<String> notes = new ArrayList<>();
        float[] baseCopy = base == null ? null : base.clone();
        try (JavaBackend be = new JavaBackend(2); TilePool pool = new TilePool()) {
            Tile b = base == null ? null : Tile.ofArray(shape, baseCopy);
            List<Tile> ms = new ArrayList<>();
            List<Params> ps = new ArrayList<>();
            for (int i = 0; i < models.length; i++) {
                ms.add(i == baseIndex ? b : Tile.ofArray(shape, models[i].clone()));
                ps.add(params(spec.perModel(), perModel.get(i), "models[" + i + "].parameters"));
            }
            MergeInputs in = new MergeInputs(TENSOR, b, ms, ps, baseIndex, 3);
            Tile out = Tile.ofArray(shape, new float[numel(dims)]);
            spec.factory().create(params(spec.global(), global, "parameters")).merge(new MergeContext(be, pool, seed, notes::add), in, out);
            if (base != null) assertArrayEquals(base, baseCopy, spec.name() + " modified the base tile");
            return new Result(out.toArray(), notes);
        }
    }

    static void assertClose(double[] exp, float[] got, String what) {
        assertEquals(exp.length, got.length);
        for (int i = 0; i < exp.length; i++) {
            double tol = 1e-6 * Math.max(1, Math.abs(exp[i]));
            assertTrue(Math.abs(exp[i] - got[i]) <= tol, what + ": at " + i + " expected " + exp[i] + " got " + got[i]);
        }
    }

    static List<Map<String, Object>> each(int n, java.util.function.IntFunction<Map<String, Object>> f) {
        List<Map<String, Object>> l = new ArrayList<>();
        for (int i = 0; i < n; i++) l.add(f.apply(i));
        return l;
    }
}
