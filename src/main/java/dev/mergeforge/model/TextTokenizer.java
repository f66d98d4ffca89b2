package dev.mergeforge.model;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.mergeforge.errors.CheckpointException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

/**
 * A model's own tokenizer.json, run by the Hugging Face tokenizers library through DJL's
 * bindings. The native library ships inside the DJL jar (linux-x86_64, linux-aarch64,
 * osx-aarch64, win-x86_64) and is unpacked to DJL's cache folder (~/.djl.ai, or
 * $DJL_CACHE_DIR) on first use: nothing is downloaded.
 *
 * <p>Lifetime: holds a native tokenizer; close it when done.
 */
public final class TextTokenizer implements AutoCloseable {
    private final HuggingFaceTokenizer tokenizer;
    private final Path file;

    private TextTokenizer(HuggingFaceTokenizer tokenizer, Path file) {
        this.tokenizer = tokenizer;
        this.file = file;
    }

    /** Opens {@code dir/tokenizer.json}. */
    public static TextTokenizer open(Path dir) {
        Path file = dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(file)) {
            throw new CheckpointException(dir + ": no tokenizer.json; text data needs the model's fast tokenizer "
                    + "(or give pre-tokenized JSONL with input_ids)");
        }
        // DJL logs through SLF4J; without a provider SLF4J prints three warning lines otherwise
        if (System.getProperty("slf4j.internal.verbosity") == null) System.setProperty("slf4j.internal.verbosity", "ERROR");
        try {
            return new TextTokenizer(HuggingFaceTokenizer.newInstance(file, Map.of(
                    "addSpecialTokens", "false", "truncation", "false", "padding", "false")), file);
        } catch (LinkageError e) {
            throw new CheckpointException("the tokenizers native library cannot be loaded on this platform (" + e.getMessage()
                    + "); give pre-tokenized JSONL with input_ids instead of text", e);
        } catch (IOException | RuntimeException e) {
            throw new CheckpointException(file + ": cannot load the tokenizer (" + e.getMessage()
                    + "); check that it is a Hugging Face fast-tokenizer file", e);
        }
    }

    /** Token ids of {@code text} without special tokens (no BOS/EOS added). */
    public int[] encode(String text) {
        Encoding e = tokenizer.encode(text, false, false);
        long[] ids = e.getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) out[i] = Math.toIntExact(ids[i]);
        return out;
    }

    /** The text of {@code ids}, special tokens left out. */
    public String decode(int[] ids) {
        long[] l = new long[ids.length];
        for (int i = 0; i < ids.length; i++) l[i] = ids[i];
        return tokenizer.decode(l, true);
    }

    public Path file() { return file; }

    @Override
    public void close() { tokenizer.close(); }
}
