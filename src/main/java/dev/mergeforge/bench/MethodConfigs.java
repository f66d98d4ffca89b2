package dev.mergeforge.bench;

import dev.mergeforge.merge.MethodRegistry;
import dev.mergeforge.merge.MethodSpec;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A benchmark config for every data-free method of the registry over base + fine-tunes (paths
 * absolute, bf16 out): {@link EndToEnd#configs}' six, then one for each other method with the
 * parameters a user would typically pass (mergekit 0.1.4's names). Fisher and RegMean need
 * statistics files: {@link #withStats} writes their configs given the files (the slice bench makes
 * synthetic ones, {@code fixtures.StatsFiles}).
 */
public final class MethodConfigs {
    private MethodConfigs() {}

    /** Every method with a config, in the registry's order. */
    public static Map<String, String> all(Path base, List<Path> fineTunes) {
        Map<String, String> extra = new LinkedHashMap<>(EndToEnd.configs(base, fineTunes));
        Path ft1 = fineTunes.getFirst();
        extra.put("dare_linear", models("dare_linear", base, fineTunes, "weight: 1.0\n      density: 0.5", ""));
        extra.put("breadcrumbs_ties", models("breadcrumbs_ties", base, fineTunes, "weight: 1.0\n      density: 0.9\n      gamma: 0.01", ""));
        extra.put("della", models("della", base, fineTunes, "weight: 1.0\n      density: 0.5\n      epsilon: 0.1", ""));
        extra.put("della_linear", models("della_linear", base, fineTunes, "weight: 1.0\n      density: 0.5\n      epsilon: 0.1", ""));
        extra.put("sce", plain("sce", base, fineTunes, "parameters:\n  select_topk: 0.5\n"));
        extra.put("ram", plain("ram", base, fineTunes, ""));
        extra.put("ramplus_tl", plain("ramplus_tl", base, fineTunes, ""));
        extra.put("multislerp", models("multislerp", base, fineTunes, "weight: 1.0", ""));
        extra.put("karcher", plain("karcher", null, fineTunes, ""));
        if (fineTunes.size() >= 2) {
            extra.put("nuslerp", models("nuslerp", base, fineTunes.subList(0, 2), "weight: 1.0", ""));
            extra.put("model_stock", plain("model_stock", base, fineTunes, ""));
        }
        extra.put("nearswap", pair("nearswap", base, ft1, "parameters:\n  t: 0.001\n"));
        extra.put("arcee_fusion", pair("arcee_fusion", base, ft1, ""));
        extra.put("passthrough", "merge_method: passthrough\nmodels:\n  - model: " + ft1 + "\ndtype: bfloat16\n");
        // registry order, so a table reads as `mergeforge methods` lists them
        Map<String, String> out = new LinkedHashMap<>();
        for (MethodSpec s : MethodRegistry.all()) if (extra.containsKey(s.name())) out.put(s.name(), extra.get(s.name()));
        return out;
    }

    /** The methods that read per-model statistics files. */
    public static final List<String> STATS_METHODS = List.of("fisher", "regmean");

    /**
     * A config of {@code method} (fisher or regmean) over the fine-tunes, weight 1 each, fine-tune j
     * reading {@code stats.get(j)}; no base (neither merges it); bfloat16 output.
     */
    public static String withStats(String method, List<Path> fineTunes, List<Path> stats) {
        if (!STATS_METHODS.contains(method)) throw new IllegalArgumentException(method + " reads no statistics");
        if (stats.size() != fineTunes.size()) throw new IllegalArgumentException("one statistics file per fine-tune");
        StringBuilder y = new StringBuilder("merge_method: " + method + "\nmodels:\n");
        for (int j = 0; j < fineTunes.size(); j++) {
            y.append("  - model: ").append(fineTunes.get(j)).append("\n    parameters:\n      weight: 1.0\n    calibration:\n      stats: ")
                    .append(stats.get(j)).append('\n');
        }
        return y.append("dtype: bfloat16\n").toString();
    }

    /** A models: config of {@code method} over the fine-tunes, each with {@code params}, then the global lines; bfloat16 output. */
    static String models(String method, Path base, List<Path> fts, String params, String global) {
        StringBuilder y = new StringBuilder("merge_method: " + method + "\n");
        if (base != null) y.append("base_model: ").append(base).append('\n');
        y.append("models:\n");
        for (Path p : fts) y.append("  - model: ").append(p).append("\n    parameters:\n      ").append(params).append('\n');
        y.append(global);
        y.append("dtype: bfloat16\n");
        return y.toString();
    }

    /** A method whose models take no parameters. */
    private static String plain(String method, Path base, List<Path> fts, String global) {
        StringBuilder y = new StringBuilder("merge_method: " + method + "\n");
        if (base != null) y.append("base_model: ").append(base).append('\n');
        y.append("models:\n");
        for (Path p : fts) y.append("  - model: ").append(p).append('\n');
        return y.append(global).append("dtype: bfloat16\n").toString();
    }

    /** A method of the base and one other model. */
    private static String pair(String method, Path base, Path other, String global) {
        return "merge_method: " + method + "\nbase_model: " + base + "\nmodels:\n  - model: " + base + "\n  - model: " + other + "\n"
                + global + "dtype: bfloat16\n";
    }
}
