package dev.mergeforge.model;

import dev.mergeforge.io.SafetensorsFile;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The tiny per-family checkpoints made by transformers, with its logits, hidden states and AIM
 * statistic, committed under src/test/resources/archs (see the README there).
 */
public final class ArchFixtures {
    /** Every family directory, in registry order. */
    public static final String[] FAMILIES = {"llama3", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "olmo2", "gpt2",
            "gpt_neox", "mixtral", "qwen3_moe"};

    private ArchFixtures() {}

    public static Path dir(String family) {
        Path p = Path.of("src/test/resources/archs", family);
        if (!Files.isDirectory(p)) throw new IllegalStateException("fixture " + p + " is missing; run tests from the repository root");
        return p;
    }

    /** The reference's input_ids [2, 24] as sequences. */
    public static int[][] inputIds(SafetensorsFile ref) {
        long[] ids = Zoo.longs(ref.tensor("input_ids"));
        long[] dims = ref.tensor("input_ids").shape().dims();
        int rows = (int) dims[0], len = (int) dims[1];
        int[][] seqs = new int[rows][len];
        for (int b = 0; b < rows; b++) for (int t = 0; t < len; t++) seqs[b][t] = (int) ids[b * len + t];
        return seqs;
    }
}
