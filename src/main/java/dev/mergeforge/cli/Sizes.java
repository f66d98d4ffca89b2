package dev.mergeforge.cli;

import dev.mergeforge.errors.ConfigException;

import java.util.Locale;

/** Byte sizes as users write them: 5GB, 500MB, 2GiB, 5B (mergekit's billions), or a plain number. */
final class Sizes {
    private Sizes() {}

    static long parse(String option, String s) {
        String t = s.trim().toUpperCase(Locale.ROOT);
        long mult = 1;
        String[][] units = {{"KIB", "1024"}, {"MIB", "1048576"}, {"GIB", "1073741824"}, {"TIB", "1099511627776"},
                {"KB", "1000"}, {"MB", "1000000"}, {"GB", "1000000000"}, {"TB", "1000000000000"},
                {"K", "1000"}, {"M", "1000000"}, {"B", "1000000000"}, {"G", "1000000000"}};
        for (String[] u : units) {
            if (t.endsWith(u[0])) {
                mult = Long.parseLong(u[1]);
                t = t.substring(0, t.length() - u[0].length()).trim();
                break;
            }
        }
        try {
            double v = Double.parseDouble(t);
            if (!(v > 0) || Double.isInfinite(v)) throw new NumberFormatException();
            return (long) Math.ceil(v * mult);
        } catch (NumberFormatException e) {
            throw new ConfigException(option + " " + s + ": expected a positive size such as 5GB, 500MB or 2GiB");
        }
    }
}
