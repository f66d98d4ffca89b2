package dev.mergeforge.linalg;

/** Lets tests in other packages use the Gaussian-elimination reference of {@link SpdSolverTest}. */
public final class SpdSolverTestAccess {
    private SpdSolverTestAccess() {}

    public static double[] gauss(double[] a, int n, double[] b, int m) { return SpdSolverTest.gauss(a, n, b, m); }
}
