package dev.mergeforge.backend;

/**
 * Which elements a magnitude-rank selection keeps: the descending ranks [from, to) of |x|, equal
 * magnitudes ranked by lower flat index first, described by the |x| bits at its two ends. An element
 * with bits a is kept iff lower ≤ a ≤ upper, except that of the elements equal to {@code upper} the
 * first {@code skipUpper} (in index order) are dropped and of those equal to {@code lower} only the
 * first {@code keepLower} are kept. {@code none}: keep nothing; {@code all}: keep everything.
 */
public record RankWindow(boolean none, boolean all, boolean hasUpper, int upper, long skipUpper, int lower, long keepLower) {

    public static final RankWindow NONE = new RankWindow(true, false, false, 0, 0, 0, 0);
    public static final RankWindow ALL = new RankWindow(false, true, false, 0, 0, 0, 0);

    public RankWindow {
        if (none && all) throw new IllegalArgumentException("a rank window cannot keep nothing and everything");
        if (skipUpper < 0 || keepLower < 0) throw new IllegalArgumentException("negative tie counts " + skipUpper + ", " + keepLower);
    }

    /** Whether element bits {@code a} are kept, given how many equal to upper / lower came before it. */
    public boolean keeps(int a, long upperBefore, long lowerBefore) {
        if (none) return false;
        if (all) return true;
        boolean keep = a <= upper && a >= lower;
        if (hasUpper && a == upper && upperBefore < skipUpper) keep = false;
        if (a == lower && lowerBefore >= keepLower) keep = false;
        return keep;
    }
}
