package dev.mergeforge.model;

/**
 * An observer that needs only Σ_t |x[t, j]| per module input (the AIM statistic). A device forward
 * pass sums on the device and hands over the float64 sums of a whole layer instead of the rows;
 * {@link #accept} still receives rows from the CPU pass.
 */
public interface AbsSumObserver extends ActivationObserver {
    /** sums[j] = Σ_t |x[t, j]| in float64, over {@code tokens} rows of the named module's input. */
    void acceptAbsSums(String weightName, double[] sums, long tokens);
}
