package dev.mergeforge.backend;

/**
 * The scalars of multislerp's per-element steps that {@link ChunkOps#sphere} runs in one sweep
 * (docs/methods.md, "multislerp"), and how far it goes ({@link Level}). For k inputs x_j:
 * <ol>
 *   <li>(with a base) x_j = x_j − base;</li>
 *   <li>mean = (meanWeights_0·x_0) + (meanWeights_1·x_1) + … left to right ({@link Level#MEAN} stops here);</li>
 *   <li>mean = meanScale·mean; x_j = unitScales_j·x_j: the units u_j ({@link Level#UNITS});</li>
 *   <li>x_j = (1·x_j) + ((−dots_j)·mean): the tangents t_j; tangent = (weights_0·t_0) + (weights_1·t_1) + …
 *       ({@link Level#TANGENTS});</li>
 *   <li>r = cos·mean; r = (1·r) + (sinOver·tangent); r = norm·r; (with a base) r = base + r; mean = r
 *       ({@link Level#RESULT}).</li>
 * </ol>
 * Every step is the float32 op {@link ChunkOps#sub}, {@link ChunkOps#weightedSum}, {@link ChunkOps#scale}
 * or {@link ChunkOps#add} would do, each product and sum rounded, no fused multiply-add: the bits of
 * those ops run one after another. Arrays hold one value per input; the levels below the given one
 * ignore the later scalars.
 *
 * @param level       the last step run
 * @param meanWeights w_j/(‖x_j‖+eps) in multislerp
 * @param meanScale   1/‖Σ meanWeights_j x_j‖
 * @param unitScales  1/(‖x_j‖+eps)
 * @param dots        u_j·m (each rounded to float32)
 * @param weights     w_j
 * @param cos         cos ‖T‖′
 * @param sinOver     sin ‖T‖′ / ‖T‖′
 * @param norm        Σ w_j ‖x_j‖
 */
public record SphereSteps(Level level, float[] meanWeights, float meanScale, float[] unitScales, float[] dots, float[] weights,
                          float cos, float sinOver, float norm) {

    /** How far {@link ChunkOps#sphere} goes; the ordinal is the native level ({@code MO_SPHERE_*}). */
    public enum Level { MEAN, UNITS, TANGENTS, RESULT }

    public SphereSteps {
        if (level == null) throw new IllegalArgumentException("sphere steps need a level");
        if (meanWeights == null || meanWeights.length == 0) throw new IllegalArgumentException("sphere steps need one mean weight per input");
        int k = meanWeights.length;
        meanWeights = meanWeights.clone();
        unitScales = perInput("unit scales", unitScales, k, level.compareTo(Level.UNITS) >= 0);
        dots = perInput("dots", dots, k, level.compareTo(Level.TANGENTS) >= 0);
        weights = perInput("weights", weights, k, level.compareTo(Level.TANGENTS) >= 0);
    }

    /** Steps 1–2: the unnormalised mean. */
    public static SphereSteps mean(float[] meanWeights) {
        return new SphereSteps(Level.MEAN, meanWeights, 0f, null, null, null, 0f, 0f, 0f);
    }

    /** Steps 1–3: the mean normalised, the units. */
    public static SphereSteps units(float[] meanWeights, float meanScale, float[] unitScales) {
        return new SphereSteps(Level.UNITS, meanWeights, meanScale, unitScales, null, null, 0f, 0f, 0f);
    }

    /** Steps 1–4: the tangents and their weighted sum. */
    public static SphereSteps tangents(float[] meanWeights, float meanScale, float[] unitScales, float[] dots, float[] weights) {
        return new SphereSteps(Level.TANGENTS, meanWeights, meanScale, unitScales, dots, weights, 0f, 0f, 0f);
    }

    /** Steps 1–5: the merged values. */
    public SphereSteps result(float cos, float sinOver, float norm) {
        if (level != Level.TANGENTS) throw new IllegalStateException("the result follows the tangents' steps, not " + level);
        return new SphereSteps(Level.RESULT, meanWeights, meanScale, unitScales, dots, weights, cos, sinOver, norm);
    }

    /** Number of inputs. */
    public int inputs() { return meanWeights.length; }

    /**
     * The scalars as the native and CUDA ops take them: meanWeights, unitScales, dots, weights (k each,
     * 0 where the level does not use them), then meanScale, cos, sinOver, norm.
     */
    public float[] packed() {
        int k = inputs();
        float[] p = new float[4 * k + 4];
        System.arraycopy(meanWeights, 0, p, 0, k);
        if (unitScales != null) System.arraycopy(unitScales, 0, p, k, k);
        if (dots != null) System.arraycopy(dots, 0, p, 2 * k, k);
        if (weights != null) System.arraycopy(weights, 0, p, 3 * k, k);
        p[4 * k] = meanScale;
        p[4 * k + 1] = cos;
        p[4 * k + 2] = sinOver;
        p[4 * k + 3] = norm;
        return p;
    }

    private static float[] perInput(String what, float[] v, int k, boolean needed) {
        if (!needed) return v == null ? null : v.clone();
        if (v == null || v.length != k) {
            throw new IllegalArgumentException("sphere steps need " + k + " " + what + ", got " + (v == null ? "none" : v.length));
        }
        return v.clone();
    }
}
