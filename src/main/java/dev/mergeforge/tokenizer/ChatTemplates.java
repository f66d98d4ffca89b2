package dev.mergeforge.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mergeforge.errors.ConfigException;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code chat_template} as mergekit 0.1.4 reads it: one of its built-in names (alpaca, chatml,
 * exaone, llama3, mistral: our own templates of those formats), {@code auto} (the template most of
 * the input models use, the first-listed winning a tie; none if no model has one), or a literal Jinja
 * template (at least 20 characters with a "{"). docs/config.md, "Tokenizers and vocabularies".
 */
public final class ChatTemplates {
    public static final List<String> BUILT_IN = List.of("alpaca", "chatml", "exaone", "llama3", "mistral");

    private ChatTemplates() {}

    /** The template text to write, or null (auto with no model template); a {@link ConfigException} for an invalid value. */
    public static String resolve(String value, List<Path> modelDirs) {
        if (value == null || value.isEmpty()) return null;
        if (value.equals("auto")) {
            Map<String, Integer> counts = new LinkedHashMap<>();
            for (Path d : modelDirs) {
                String t = templateOf(d);
                if (t != null && !t.strip().isEmpty()) counts.merge(t.strip(), 1, Integer::sum);
            }
            String best = null;
            for (var e : counts.entrySet()) if (best == null || e.getValue() > counts.get(best)) best = e.getKey();
            return best;
        }
        if (BUILT_IN.contains(value)) return builtIn(value);
        if (value.length() < 20 || !value.contains("{")) {
            throw new ConfigException("chat_template: '" + value + "' is neither a built-in template (" + String.join(", ", BUILT_IN)
                    + ", auto) nor a Jinja template; give one of those names or the template text");
        }
        return value;
    }

    static String builtIn(String name) {
        try (InputStream in = ChatTemplates.class.getResourceAsStream("chat_templates/" + name + ".jinja")) {
            if (in == null) throw new IllegalStateException("built-in chat template " + name + " is missing from the jar");
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A model's own template: chat_template.jinja, else tokenizer_config.json's chat_template (its "default" entry if a list). */
    static String templateOf(Path dir) {
        try {
            Path jinja = dir.resolve("chat_template.jinja");
            if (Files.isRegularFile(jinja)) return Files.readString(jinja);
            Path cfg = dir.resolve("tokenizer_config.json");
            if (!Files.isRegularFile(cfg)) return null;
            JsonNode t = Vocab.JSON.readTree(Files.readString(cfg)).path("chat_template");
            if (t.isTextual()) return t.asText();
            for (JsonNode e : t) if ("default".equals(e.path("name").asText())) return e.path("template").asText(null);
            return null;
        } catch (IOException e) {
            return null; // a model whose tokenizer files cannot be read has no template to vote with (mergekit: a warning)
        }
    }
}
