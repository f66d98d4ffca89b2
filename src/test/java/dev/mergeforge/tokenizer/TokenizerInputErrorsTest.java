package dev.mergeforge.tokenizer;

import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.errors.MergeforgeException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.function.Executable;
import org.yaml.snakeyaml.Yaml;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Tokenizer files and tokenizer settings that are refused, each naming the file or key. */
class TokenizerInputErrorsTest {
    @TempDir Path dir;

    static void has(Class<? extends MergeforgeException> type, Executable e, String... parts) {
        MergeforgeException x = assertThrows(type, e);
        for (String p : parts) assertTrue(x.getMessage().contains(p), "'" + p + "' in: " + x.getMessage());
    }

    Path tok(String name, String json) throws IOException {
        Path d = Files.createDirectories(dir.resolve(name));
        if (json != null) Files.writeString(d.resolve("tokenizer.json"), json);
        return d;
    }

    @Test
    void tokenizerFiles() throws IOException {
        has(CheckpointException.class, () -> Vocab.read(tok("none", null), 4), "no tokenizer.json");
        has(CheckpointException.class, () -> Vocab.read(tok("bad", "{"), 4), "tokenizer.json", "JSON");
        has(CheckpointException.class, () -> Vocab.read(tok("nomodel", "{\"added_tokens\": []}"), 4), "no \"model\" object");
        has(CheckpointException.class, () -> Vocab.read(tok("novocab", "{\"model\": {\"type\": \"BPE\"}}"), 4), "model.vocab is missing");
        has(CheckpointException.class, () -> Vocab.read(tok("added", "{\"model\": {\"vocab\": {}}, \"added_tokens\": [{\"id\": 1}]}"), 4), "lacks id or content");
        Vocab gap = Vocab.read(tok("gap", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 2}}}"), 3);
        has(CheckpointException.class, gap::size, "not 0..1", "'b' has id 2");
        Vocab uni = Vocab.read(tok("uni", "{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0], [\"b\", -1], [\"c\", -2]]}}"), 2);
        assertEquals(2, uni.ids().get("c"));
        has(CheckpointException.class, uni::stripped, "Unigram", "only BPE");
    }

    static Map<String, Object> yaml(String s) { return new Yaml().load(s); }

    @Test
    void tokenizerSettings() {
        has(ConfigException.class, () -> TokenSettings.from(yaml("tokenizer: {tokens: [a]}")), "tokenizer.tokens: must map");
        has(ConfigException.class, () -> TokenSettings.from(yaml("tokenizer: {tokens: {a: 3}}")), "tokenizer.tokens['a']: must be a mapping");
        has(ConfigException.class, () -> TokenSettings.from(yaml("tokenizer: {tokens: {a: {force: true}}}")), "tokenizer.tokens['a'].source: missing");
        has(ConfigException.class, () -> TokenSettings.from(yaml("tokenizer: {tokens: {a: {source: m, force: 1}}}")), "tokenizer.tokens['a'].force");
        has(ConfigException.class, () -> TokenSettings.from(yaml("tokenizer: {tokens: {a: {source: 5}}}")), "tokenizer.tokens['a'].source: must be a model");
        has(ConfigException.class, () -> TokenSettings.from(yaml("tokenizer: {tokens: {a: {source: {kind: one}}}}")), ".kind: must be model_token or zero");
        has(ConfigException.class, () -> TokenSettings.from(yaml("tokenizer: {tokens: {a: {source: {kind: zero, model: m}}}}")), ".source.model: unknown key");
        has(ConfigException.class, () -> TokenSettings.from(yaml("tokenizer: {tokens: {a: {source: {kind: model_token, token: x}}}}")), ".model: the model whose row");
        has(ConfigException.class, () -> TokenSettings.from(yaml("tokenizer: {tokens: {a: {source: {kind: model_token, model: m}}}}")), "exactly one of token_id and token");
        has(ConfigException.class, () -> TokenSettings.from(yaml("tokenizer: {tokens: {a: {source: {kind: model_token, model: m, token_id: x}}}}")), ".token_id: must be an integer");
        has(ConfigException.class, () -> TokenSettings.from(yaml("tokenizer: {pad_to_multiple_of: 2.5}")), "pad_to_multiple_of");
        TokenSettings ok = TokenSettings.from(yaml("tokenizer: {pad_to_multiple_of: 64, tokens: {a: {source: {kind: model_token, model: m, token_id: 3}, force: true}}}"));
        assertEquals(128, ok.paddedSize(65));
        assertEquals(64, ok.paddedSize(64));
        assertEquals(new TokenSettings.TokenRule(new TokenSettings.Source.ModelToken("m", 3, null), true), ok.tokens().get("a"));
    }

    @Test
    void chatTemplates() throws IOException {
        has(ConfigException.class, () -> ChatTemplates.resolve("chatmel", List.of()), "chatmel", "built-in");
        has(ConfigException.class, () -> ChatTemplates.resolve("{{ a }}", List.of()), "neither");
        assertNull(ChatTemplates.resolve("auto", List.of(tok("empty", null))), "auto with no model template writes none");
        for (String n : ChatTemplates.BUILT_IN) assertTrue(ChatTemplates.resolve(n, List.of()).contains("messages"), n);
    }
}
