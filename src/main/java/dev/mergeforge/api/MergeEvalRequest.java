package dev.mergeforge.api;

import dev.mergeforge.errors.ConfigException;

import java.nio.file.Path;
import java.util.List;

/**
 * One candidate of a search loop: merge per the config (a file or YAML text) and evaluate the result
 * on {@code text} and {@code tasks} as {@link EvalRequest} does, without a checkpoint on disk
 * (see {@link Mergeforge#mergeAndEval}).
 */
public record MergeEvalRequest(Path configFile, String configYaml, long seed, BackendChoice backend, Path text, List<Path> tasks,
                               int maxTokens, int rows) {
    public MergeEvalRequest {
        tasks = tasks == null ? List.of() : List.copyOf(tasks);
        if ((configFile == null) == (configYaml == null)) {
            throw new ConfigException("merge-eval request: give exactly one of a config file and config YAML text");
        }
        if (backend == null) throw new ConfigException("merge-eval request: backend choice is missing; use BackendChoice.AUTO");
        if (text == null && tasks.isEmpty()) throw new ConfigException("merge-eval request: give eval text and/or task files");
        if (rows <= 0 || maxTokens < 2) throw new ConfigException("merge-eval request: rows must be > 0 and max tokens >= 2");
    }

    /** Merges with the config text on the default backend; scores {@code text} with the eval defaults (128 tokens a document). */
    public static MergeEvalRequest ofYaml(String configYaml, Path text) {
        return new MergeEvalRequest(null, configYaml, 0, BackendChoice.AUTO, text, List.of(), 128, 100);
    }

    /** The merge half, into {@code output}. */
    MergeRequest merge(Path output) {
        return new MergeRequest(configFile, configYaml, output, seed, MergeRequest.DEFAULT_SHARD_BYTES, false, false, false, backend, 0);
    }

    /** The eval half, of {@code model}, with the backend's thread count. */
    EvalRequest eval(Path model) {
        return new EvalRequest(model.toString(), text, tasks, maxTokens, rows, "cpu", backend.threads());
    }
}
