package dev.mergeforge.api;

import dev.mergeforge.errors.ConfigException;

import java.nio.file.Path;
import java.util.List;

/**
 * An evaluation of {@code model} (docs/calibration.md): mean token loss and perplexity on {@code text}
 * (null: none), greedy exact match and answer NLL on each {@code {prompt, answer}} JSONL of {@code tasks}.
 *
 * @param maxTokens tokens scored per text document, at least 2
 * @param rows      task rows evaluated per file, at least 1
 * @param device    where the teacher-forced passes run: cpu, cuda or cuda:N
 */
public record EvalRequest(String model, Path text, List<Path> tasks, int maxTokens, int rows, String device, int threads) {
    public EvalRequest {
        tasks = tasks == null ? List.of() : List.copyOf(tasks);
        if (model == null) throw new ConfigException("eval request: the model is missing; give a model directory or cache id");
        if (text == null && tasks.isEmpty()) throw new ConfigException("mergeforge eval: give --text FILE and/or --tasks FILE.jsonl");
        if (rows <= 0 || maxTokens < 2) throw new ConfigException("--rows must be > 0 and --max-tokens >= 2");
        if (device == null) throw new ConfigException("eval request: device is missing; give cpu, cuda or cuda:N");
        if (threads < 0) throw new ConfigException("--threads " + threads + ": must be 0 (one thread per core) or a positive thread count");
    }

    /** The command line's defaults: 128 tokens a document, 100 rows a task file, on the CPU. */
    public static EvalRequest of(String model, Path text, List<Path> tasks) {
        return new EvalRequest(model, text, tasks, 128, 100, "cpu", 0);
    }
}
