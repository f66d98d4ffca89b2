package dev.mergeforge.tokenizer;

import dev.mergeforge.errors.ConfigException;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The tokenizer keys of a merge config that go beyond the source: per-token embedding sources
 * ({@code tokenizer.tokens}), {@code tokenizer.pad_to_multiple_of} and {@code chat_template}, read
 * as mergekit 0.1.4's TokenizerConfig reads them (docs/config.md, "Tokenizers and vocabularies").
 *
 * @param tokens       token to its embedding rule, in config order
 * @param padTo        pad the output vocabulary to a multiple of this (null: no padding)
 * @param chatTemplate chat_template as written (a built-in name, "auto" or Jinja), or null
 */
public record TokenSettings(Map<String, TokenRule> tokens, Integer padTo, String chatTemplate) {
    public TokenSettings {
        tokens = Collections.unmodifiableMap(new LinkedHashMap<>(tokens));
        if (padTo != null && padTo < 1) throw new ConfigException("tokenizer.pad_to_multiple_of: must be a positive integer, got " + padTo);
    }

    /** Where a token's default embedding comes from. */
    public sealed interface Source {
        /** That model's row of the same token. */
        record Model(String model) implements Source {}

        /** Row {@code tokenId} of {@code model}, or the row of {@code token} in that model's own vocabulary. */
        record ModelToken(String model, Integer tokenId, String token) implements Source {}

        /** A zero row. */
        record Zero() implements Source {}
    }

    /** A token's rule: its default embedding and whether it replaces the token's row in every model. */
    public record TokenRule(Source source, boolean force) {}

    /** The output vocabulary size: {@code n} rounded up to {@code padTo}. */
    public int paddedSize(int n) { return padTo == null || n % padTo == 0 ? n : (n / padTo + 1) * padTo; }

    /** Reads the keys from the raw YAML mapping; every problem is a {@link ConfigException} naming the key. */
    public static TokenSettings from(Map<String, Object> raw) {
        Map<String, TokenRule> tokens = new LinkedHashMap<>();
        Integer pad = null;
        if (raw.get("tokenizer") instanceof Map<?, ?> block) {
            Object t = block.get("tokens");
            if (t != null) {
                if (!(t instanceof Map<?, ?> m)) throw new ConfigException("tokenizer.tokens: must map tokens to {source, force}, got '" + t + "'");
                for (var e : m.entrySet()) tokens.put(String.valueOf(e.getKey()), rule(String.valueOf(e.getKey()), e.getValue()));
            }
            Object p = block.get("pad_to_multiple_of");
            if (p != null) {
                if (!(p instanceof Integer i) || i < 1) throw new ConfigException("tokenizer.pad_to_multiple_of: must be a positive integer, got '" + p + "'");
                pad = i;
            }
        }
        Object chat = raw.get("chat_template");
        return new TokenSettings(tokens, pad, chat == null ? null : String.valueOf(chat));
    }

    private static TokenRule rule(String token, Object raw) {
        String key = "tokenizer.tokens['" + token + "']";
        if (!(raw instanceof Map<?, ?> m)) throw new ConfigException(key + ": must be a mapping {source, force}, got '" + raw + "'");
        unknown(m, key, Set.of("source", "force"));
        Object force = m.get("force");
        if (force != null && !(force instanceof Boolean)) throw new ConfigException(key + ".force: must be true or false, got '" + force + "'");
        Object s = m.get("source");
        if (s == null) {
            throw new ConfigException(key + ".source: missing; give a model, {kind: model_token, model, token_id | token} or {kind: zero}"
                    + " (mergekit fails on a token without a source)");
        }
        return new TokenRule(source(s, key + ".source"), Boolean.TRUE.equals(force));
    }

    private static Source source(Object s, String key) {
        if (s instanceof String model) return new Source.Model(model);
        if (!(s instanceof Map<?, ?> m)) throw new ConfigException(key + ": must be a model or a {kind: ...} mapping, got '" + s + "'");
        Object kind = m.get("kind");
        if ("zero".equals(kind)) {
            unknown(m, key, Set.of("kind"));
            return new Source.Zero();
        }
        if (!"model_token".equals(kind)) throw new ConfigException(key + ".kind: must be model_token or zero, got '" + kind + "'");
        unknown(m, key, Set.of("kind", "model", "token_id", "token"));
        if (!(m.get("model") instanceof String model)) throw new ConfigException(key + ".model: the model whose row is taken is missing");
        Object id = m.get("token_id"), tok = m.get("token");
        if ((id == null) == (tok == null)) throw new ConfigException(key + ": give exactly one of token_id and token");
        if (id != null && !(id instanceof Integer)) throw new ConfigException(key + ".token_id: must be an integer, got '" + id + "'");
        return new Source.ModelToken(model, (Integer) id, tok == null ? null : String.valueOf(tok));
    }

    private static void unknown(Map<?, ?> m, String key, Set<String> valid) {
        for (Object k : m.keySet()) {
            if (!valid.contains(String.valueOf(k))) throw new ConfigException(key + "." + k + ": unknown key; valid keys: " + String.join(", ", List.copyOf(new java.util.TreeSet<>(valid))));
        }
    }
}
