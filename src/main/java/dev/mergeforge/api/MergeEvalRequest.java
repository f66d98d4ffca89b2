package dev.mergeforge.api;

import dev.mergeforge.errors.ConfigException;

import java.nio.file.Path;
import java.util.List;

/**
 * One candidate of a search loop: merge per the config (a file or YAML text) and evaluate the result
 * on {@code text} and {@code tasks} as {@link EvalRequest} does, without a checkpoint on disk
 * (see {@link Mergeforge#mergeAndEval}).
 *
 * @param maxMemoryBytes the memory the merge may use and the candidate's predicted peak is held to
 *                       (as {@link MergeRequest#maxMemoryBytes}); 0 for the machine's default
 * @param mode           how the candidate is held: in memory, layer by layer, or chosen by predicted size (AUTO)
 */
public record MergeEvalRequest(Path configFile, String configYaml, long seed, BackendChoice backend, Path text, List<Path> tasks,
                               int maxTokens, int rows, long maxMemoryBytes, CandidateMode mode) {
    public MergeEvalRequest {
        tasks = tasks == null ? List.of() : List.copyOf(tasks);
        if ((configFile == null) == (configYaml == null)) {
            throw new ConfigException("merge-eval request: give exactly one of a config file and config YAML text");
        }
        if (backend == null) throw new ConfigException("merge-eval request: backend choice is missing; use BackendChoice.AUTO");
        if (text == null && tasks.isEmpty()) throw new ConfigException("merge-eval request: give eval text and/or task files");
        if (rows <= 0 || maxTokens < 2) throw new ConfigException("merge-eval request: rows must be > 0 and max tokens >= 2");
        if (maxMemoryBytes < 0) throw new ConfigException("merge-eval request: memory budget " + maxMemoryBytes + " must be positive (e.g. 1GB), or 0 for the default");
        if (mode == null) throw new ConfigException("merge-eval request: mode is missing; use CandidateMode.AUTO");
    }

    /** The default budget and mode (AUTO). */
    public MergeEvalRequest(Path configFile, String configYaml, long seed, BackendChoice backend, Path text, List<Path> tasks, int maxTokens, int rows) {
        this(configFile, configYaml, seed, backend, text, tasks, maxTokens, rows, 0, CandidateMode.AUTO);
    }

    public MergeEvalRequest withMode(CandidateMode m) {
        return new MergeEvalRequest(configFile, configYaml, seed, backend, text, tasks, maxTokens, rows, maxMemoryBytes, m);
    }

    public MergeEvalRequest withMaxMemoryBytes(long b) {
        return new MergeEvalRequest(configFile, configYaml, seed, backend, text, tasks, maxTokens, rows, b, mode);
    }

    /** Merges with the config text on the default backend; scores {@code text} with the eval defaults (128 tokens a document). */
    public static MergeEvalRequest ofYaml(String configYaml, Path text) {
        return new MergeEvalRequest(null, configYaml, 0, BackendChoice.AUTO, text, List.of(), 128, 100);
    }

    /** The merge half, into {@code output}. */
    MergeRequest merge(Path output) {
        return new MergeRequest(configFile, configYaml, output, seed, MergeRequest.DEFAULT_SHARD_BYTES, false, false, false, backend, maxMemoryBytes);
    }

    /** The eval half, of {@code model}, with the backend's thread count. */
    EvalRequest eval(Path model) {
        return new EvalRequest(model.toString(), text, tasks, maxTokens, rows, "cpu", backend.threads());
    }
}
