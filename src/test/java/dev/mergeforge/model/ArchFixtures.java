package dev.mergeforge.model;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.fixtures.HfFiles;
import dev.mergeforge.io.SafetensorsFile;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The tiny per-family checkpoints made by transformers, with its logits, hidden states and AIM
 * statistic, committed under src/test/resources/archs (see the README there).
 */
public final class ArchFixtures {
    private static final ObjectMapper JSON = new ObjectMapper();

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

    /** A copy of the fixture with a tokenizer; weights scaled by 1 + eps·sin(i) (eps 0: the fixture itself). */
    public static Path copy(Path fixture, Path dir, double eps) throws IOException {
        Files.createDirectories(dir);
        Files.copy(fixture.resolve("config.json"), dir.resolve("config.json"));
        byte[] st = Files.readAllBytes(fixture.resolve("model.safetensors"));
        if (eps != 0) {
            ByteBuffer bb = ByteBuffer.wrap(st).order(ByteOrder.LITTLE_ENDIAN);
            int data = (int) (8 + bb.getLong(0));
            // every stored tensor is F32: perturb each value in place, keeping the header
            for (int at = data, i = 0; at + 4 <= st.length; at += 4, i++) bb.putFloat(at, (float) (bb.getFloat(at) * (1 + eps * Math.sin(i))));
        }
        Files.write(dir.resolve("model.safetensors"), st);
        ObjectNode tc = JSON.createObjectNode();
        tc.putNull("bos_token");
        tc.put("eos_token", "</s>");
        Files.writeString(dir.resolve("tokenizer_config.json"), tc.toString());
        // a character-level tokenizer over ids below every fixture's vocabulary of 160
        Files.writeString(dir.resolve("tokenizer.json"), HfFiles.charTokenizer(List.of("</s>"), null, Integer.MAX_VALUE).toString());
        return dir;
    }
}
