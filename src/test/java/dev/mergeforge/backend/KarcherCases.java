package dev.mergeforge.backend;

import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Inputs for Karcher's fused ops ({@link ChunkOps#karcherMean}, {@link ChunkOps#karcherTangent}),
 * shared by the Java, native and CUDA tests, with the separate ops they replace as the reference.
 * Values are held as float bits (so a signalling NaN reaches the op as it is): weight-like values
 * of mixed scales with ±0, subnormals, quiet and signalling NaNs with payloads, ±∞ and values whose
 * products overflow sprinkled in; odd sizes (1, 7, 1025, 4097, and 70,001 that spans several
 * native work chunks); 1 to 4 inputs; scales, weights and factors that overflow, underflow to
 * subnormals and give −0.0 products (a coefficient of ±0).
 */
public final class KarcherCases {
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED;
    private static final int[] SPECIAL = {
        0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x00800000, 0x7f7fffff, 0xff7fffff, 0x7f800000, 0xff800000,
        0x3f800000, // the NaNs last: 0x7fc00000 quiet, then payloads, then signalling
        0x7fc00000, 0x7fc12345, 0xffc00001, 0x7f800001, 0xff812345,
    };

    private KarcherCases() {}

    /** One case: inputs (bits), scales, weights and f of the mean; u (bits), −cos and coefficients of the tangent. */
    public record Case(String name, int[][] xs, float[] scales, float[] w, float f, int[] u, float[] minusCos, float[] coef) {
        public int n() { return u.length; }
        @Override public String toString() { return name; }
    }

    public static List<Case> cases() {
        List<Case> cs = new ArrayList<>();
        long seed = 1;
        for (int n : new int[] {1, 7, 1025, 4097, 70_001}) {
            for (int k = 1; k <= 4; k++) cs.add(make("n=" + n + " k=" + k, n, k, seed++, false));
        }
        cs.add(make("extreme factors n=4097 k=3", 4097, 3, seed++, true));
        cs.add(make("extreme factors n=7 k=2", 7, 2, seed, true));
        return cs;
    }

    private static Case make(String name, int n, int k, long seed, boolean extreme) {
        SplittableRandom r = new SplittableRandom(seed);
        int[][] xs = new int[k][];
        for (int p = 0; p < k; p++) xs[p] = values(r, n);
        int[] u = values(r, n);
        sprinkle(r, xs, u, extreme);
        float[] scales = new float[k], w = new float[k], mc = new float[k], coef = new float[k];
        for (int p = 0; p < k; p++) {
            scales[p] = extreme ? new float[] {1e30f, 1e-30f, 3.4e38f, 1f}[p % 4] : (float) (1 / (1 + 100 * r.nextDouble()));
            w[p] = extreme ? new float[] {2e38f, 1e-38f, 0.5f}[p % 3] : 1f / k;
            mc[p] = new float[] {-0.999f, -0f, 0.5f, -1f}[(p + (int) seed) % 4];
            coef[p] = extreme ? new float[] {0f, -0f, 3e38f}[p % 3] : new float[] {1e-3f, -2f, 0f, -0f}[(p + (int) seed) % 4];
        }
        float f = extreme ? 3e38f : (float) (1 / (0.5 + r.nextDouble()));
        return new Case(name, xs, scales, w, f, u, mc, coef);
    }

    /** Gaussian values of mixed scales, finite. */
    private static int[] values(SplittableRandom r, int n) {
        int[] v = new int[n];
        for (int i = 0; i < n; i++) v[i] = Float.floatToRawIntBits((float) (r.nextGaussian() * Math.pow(10, r.nextInt(-6, 3))));
        return v;
    }

    /**
     * One special value in one of the arrays at a quarter of the elements, never two at one element:
     * two NaNs of different payloads meeting in one operation (an input's NaN and one that ∞ − ∞
     * makes, say) are outside every backend's contract (docs/native.md), since which payload x86
     * keeps depends on an operand order neither C2 nor gcc pins. With extreme factors products
     * overflow anyway, so those cases take no NaN input.
     */
    private static void sprinkle(SplittableRandom r, int[][] xs, int[] u, boolean extreme) {
        int specials = extreme ? 10 : SPECIAL.length;
        for (int i = 0; i < u.length; i++) {
            if (r.nextInt(4) != 0) continue;
            int a = r.nextInt(xs.length + 1);
            (a == xs.length ? u : xs[a])[i] = SPECIAL[r.nextInt(specials)];
        }
    }

    /** A native tile holding the bits. */
    public static Tile tile(Arena arena, int[] bits) {
        MemorySegment s = arena.allocate(Math.max(4, 4L * bits.length), 64);
        for (int i = 0; i < bits.length; i++) s.setAtIndex(I32, i, bits[i]);
        return new Tile(s.asSlice(0, 4L * bits.length), Shape.of(bits.length));
    }

    public static List<Tile> tiles(Arena arena, int[][] bits) {
        List<Tile> ts = new ArrayList<>();
        for (int[] b : bits) ts.add(tile(arena, b));
        return ts;
    }

    /** The tile's float bits. */
    public static int[] bits(Tile t) {
        int[] v = new int[Math.toIntExact(t.size())];
        for (int i = 0; i < v.length; i++) v[i] = t.data().getAtIndex(I32, i);
        return v;
    }

    /** Where the bits differ first, or null. */
    public static String firstDifference(int[] want, int[] got) {
        if (want.length != got.length) return "length " + got.length + ", want " + want.length;
        for (int i = 0; i < want.length; i++) {
            if (want[i] != got[i]) {
                return "element " + i + " is 0x" + Integer.toHexString(got[i]) + " (" + Float.intBitsToFloat(got[i]) + "), want 0x"
                        + Integer.toHexString(want[i]) + " (" + Float.intBitsToFloat(want[i]) + ")";
            }
        }
        return null;
    }

    /** The separate ops {@link ChunkOps#karcherMean} replaces, on {@code ops}: units (bits) then u (bits). */
    public static int[][] separateMean(ChunkOps ops, Arena arena, Case c) {
        List<Tile> units = tiles(arena, c.xs());
        Tile u = tile(arena, new int[c.n()]);
        for (int p = 0; p < units.size(); p++) ops.scale(units.get(p), c.scales()[p], units.get(p));
        ops.weightedSum(units, c.w(), u);
        ops.scale(u, c.f(), u);
        int[][] out = new int[units.size() + 1][];
        for (int p = 0; p < units.size(); p++) out[p] = bits(units.get(p));
        out[units.size()] = bits(u);
        return out;
    }

    /** The separate ops {@link ChunkOps#karcherTangent} replaces, on {@code ops}, with the inputs as units: T's bits. */
    public static int[] separateTangent(ChunkOps ops, Arena arena, Case c) {
        List<Tile> units = tiles(arena, c.xs());
        Tile u = tile(arena, c.u()), t = tile(arena, new int[c.n()]), tmp = tile(arena, new int[c.n()]);
        ops.fill(t, 0f);
        for (int p = 0; p < units.size(); p++) {
            ops.weightedSum(List.of(units.get(p), u), new float[] {1f, c.minusCos()[p]}, tmp);
            ops.weightedSum(List.of(t, tmp), new float[] {1f, c.coef()[p]}, t);
        }
        return bits(t);
    }

    /** Which units {@link ChunkOps#karcherMeanTangent} takes in a case: all, every other one from the last down, none. */
    public static List<int[]> termChoices(Case c) {
        int k = c.xs().length;
        int[] all = new int[k], some = new int[(k + 1) / 2];
        for (int p = 0; p < k; p++) all[p] = p;
        for (int j = 0; j < some.length; j++) some[j] = k - 1 - 2 * j;
        return List.of(all, some, new int[0]);
    }

    /** c's −cos and coefficients of the units in {@code terms}. */
    public static float[] pick(float[] v, int[] terms) {
        float[] out = new float[terms.length];
        for (int j = 0; j < terms.length; j++) out[j] = v[terms[j]];
        return out;
    }

    /** The separate ops {@link ChunkOps#karcherMeanTangent} replaces: units, u, then fill and two weighted sums per term; T's bits. */
    public static int[] separateMeanTangent(ChunkOps ops, Arena arena, Case c, int[] terms) {
        List<Tile> units = tiles(arena, c.xs());
        Tile u = tile(arena, new int[c.n()]), t = tile(arena, new int[c.n()]), tmp = tile(arena, new int[c.n()]);
        for (int p = 0; p < units.size(); p++) ops.scale(units.get(p), c.scales()[p], units.get(p));
        ops.weightedSum(units, c.w(), u);
        ops.scale(u, c.f(), u);
        ops.fill(t, 0f);
        for (int p : terms) {
            ops.weightedSum(List.of(units.get(p), u), new float[] {1f, c.minusCos()[p]}, tmp);
            ops.weightedSum(List.of(t, tmp), new float[] {1f, c.coef()[p]}, t);
        }
        return bits(t);
    }
}
