package dev.mergeforge.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.errors.ConfigException;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** One task example: the model is given {@code prompt} and should continue with {@code answer}. */
public record PromptAnswer(String prompt, String answer) {
    private static final ObjectMapper JSON = new ObjectMapper();

    public PromptAnswer {
        if (prompt == null || answer == null) throw new IllegalArgumentException("prompt and answer must not be null");
    }

    /** Reads JSONL rows {"prompt": ..., "answer": ...}. */
    public static List<PromptAnswer> readJsonl(Path file) {
        List<PromptAnswer> rows = new ArrayList<>();
        try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            int no = 0;
            for (String l; (l = r.readLine()) != null; ) {
                no++;
                if (l.isBlank()) continue;
                JsonNode row;
                try {
                    row = JSON.readTree(l);
                } catch (IOException e) {
                    throw new ConfigException(file + " line " + no + ": not valid JSON; give one {prompt, answer} object per line");
                }
                if (row == null || !row.path("prompt").isTextual() || !row.path("answer").isTextual()) {
                    throw new ConfigException(file + " line " + no + ": needs string fields 'prompt' and 'answer'");
                }
                rows.add(new PromptAnswer(row.get("prompt").asText(), row.get("answer").asText()));
            }
        } catch (IOException e) {
            throw new ConfigException("cannot read " + file + ": " + e.getMessage() + "; check the path", e);
        }
        if (rows.isEmpty()) throw new ConfigException(file + ": no rows");
        return rows;
    }
}
