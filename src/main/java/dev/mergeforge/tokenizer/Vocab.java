package dev.mergeforge.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.errors.CheckpointException;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * One model's fast tokenizer ({@code tokenizer.json}) as a vocabulary: every token with its id
 * (the model's vocabulary and the added tokens, as transformers' {@code get_vocab()} sees them),
 * which of them are added tokens, and the number of embedding rows the model has
 * ({@code vocab_size} of its config.json). See docs/config.md, "Tokenizers and vocabularies".
 *
 * @param dir       the model directory the files came from (for messages)
 * @param json      the parsed tokenizer.json (never modified)
 * @param ids       token to id, for all tokens
 * @param added     added tokens by id, in id order (each the tokenizer.json entry)
 * @param rows      embedding rows the model has: config.json vocab_size, else the vocabulary's size
 */
public record Vocab(Path dir, ObjectNode json, Map<String, Integer> ids, Map<Integer, ObjectNode> added, int rows) {
    static final ObjectMapper JSON = new ObjectMapper();

    public Vocab {
        ids = Collections.unmodifiableMap(new LinkedHashMap<>(ids));
        added = Collections.unmodifiableMap(new LinkedHashMap<>(added));
    }

    /** Reads {@code dir/tokenizer.json}; {@code configVocab} is config.json's vocab_size (≤ 0: unknown). */
    public static Vocab read(Path dir, int configVocab) {
        Path p = dir.resolve("tokenizer.json");
        if (!Files.isRegularFile(p)) {
            throw new CheckpointException("model " + dir + " has no tokenizer.json, which merging vocabularies needs;"
                    + " save its fast tokenizer there (transformers: AutoTokenizer.from_pretrained(dir).save_pretrained(dir)) or drop tokenizer_source");
        }
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(p));
        } catch (IOException e) {
            throw new CheckpointException(p + " cannot be read as JSON (" + e.getMessage().lines().findFirst().orElse("") + "); re-download or fix it", e);
        }
        if (root == null || !root.isObject() || !root.path("model").isObject()) {
            throw new CheckpointException(p + " is not a tokenizers file (no \"model\" object); re-save the tokenizer with transformers");
        }
        Map<String, Integer> ids = new LinkedHashMap<>();
        JsonNode vocab = root.path("model").path("vocab");
        if (vocab.isObject()) {
            for (var it = vocab.properties().iterator(); it.hasNext(); ) {
                var e = it.next();
                if (!e.getValue().canConvertToInt()) throw bad(p, "model.vocab['" + e.getKey() + "'] is not an integer id");
                ids.put(e.getKey(), e.getValue().asInt());
            }
        } else if (vocab.isArray()) {
            // Unigram: [[piece, score], ...], the id is the position
            for (int i = 0; i < vocab.size(); i++) ids.put(vocab.get(i).path(0).asText(), i);
        } else {
            throw bad(p, "model.vocab is missing");
        }
        Map<Integer, ObjectNode> added = new java.util.TreeMap<>();
        for (JsonNode a : root.path("added_tokens")) {
            if (!a.isObject() || !a.path("id").canConvertToInt() || !a.path("content").isTextual()) throw bad(p, "an added_tokens entry lacks id or content: " + a);
            added.put(a.get("id").asInt(), (ObjectNode) a);
            ids.put(a.get("content").asText(), a.get("id").asInt());
        }
        int rows = configVocab > 0 ? configVocab : ids.values().stream().mapToInt(Integer::intValue).max().orElse(-1) + 1;
        return new Vocab(dir, (ObjectNode) root, ids, added, rows);
    }

    private static CheckpointException bad(Path p, String what) {
        return new CheckpointException(p + ": " + what + "; re-save the tokenizer with transformers");
    }

    /** Token contents that are added tokens. */
    public Set<String> addedContents() {
        Set<String> s = new HashSet<>();
        for (ObjectNode a : added.values()) s.add(a.get("content").asText());
        return s;
    }

    /** Tokens in id order (ties, which a valid file has none of, by name). */
    public List<Map.Entry<String, Integer>> byId() {
        List<Map.Entry<String, Integer>> l = new ArrayList<>(ids.entrySet());
        l.sort(Map.Entry.<String, Integer>comparingByValue().thenComparing(Map.Entry.comparingByKey()));
        return l;
    }

    /**
     * This tokenizer without the tokens whose id is at least {@link #rows()} (transformers would
     * index past the embedding), as mergekit strips its base tokenizer: their vocabulary entries,
     * added tokens and the BPE merges that use them go. Only BPE models can be stripped.
     */
    public Vocab stripped() {
        Set<String> unused = new HashSet<>();
        for (var e : ids.entrySet()) if (e.getValue() >= rows) unused.add(e.getKey());
        if (unused.isEmpty()) return this;
        ObjectNode t = json.deepCopy();
        String type = t.path("model").path("type").asText();
        if (!type.equals("BPE")) {
            throw new CheckpointException(dir.resolve("tokenizer.json") + " has " + unused.size() + " tokens beyond the model's " + rows
                    + " embedding rows and is a " + type + " tokenizer; only BPE tokenizers can be trimmed (as in mergekit): give another model's tokenizer as tokenizer_source");
        }
        ObjectNode v = (ObjectNode) t.path("model").path("vocab");
        for (String u : unused) v.remove(u);
        ArrayNode addedOut = t.putArray("added_tokens");
        for (var a : added.entrySet()) if (a.getKey() < rows) addedOut.add(a.getValue());
        JsonNode merges = t.path("model").path("merges");
        if (merges.isArray()) {
            ArrayNode kept = JSON.createArrayNode();
            for (JsonNode m : merges) {
                List<String> parts = new ArrayList<>();
                if (m.isTextual()) parts.addAll(List.of(m.asText().split(" ", -1)));
                else for (JsonNode x : m) parts.add(x.asText());
                if (parts.stream().noneMatch(unused::contains)) kept.add(m);
            }
            ((ObjectNode) t.path("model")).set("merges", kept);
        }
        Map<String, Integer> ids2 = new LinkedHashMap<>();
        for (var e : ids.entrySet()) if (e.getValue() < rows) ids2.put(e.getKey(), e.getValue());
        Map<Integer, ObjectNode> added2 = new LinkedHashMap<>();
        for (var a : added.entrySet()) if (a.getKey() < rows) added2.put(a.getKey(), a.getValue());
        return new Vocab(dir, t, ids2, added2, rows);
    }

    /** The number of ids, checked to be 0..n-1 without holes (else rows could not be laid out). */
    public int size() {
        int n = ids.size();
        boolean[] seen = new boolean[n];
        for (var e : ids.entrySet()) {
            int id = e.getValue();
            if (id < 0 || id >= n || seen[id]) {
                throw new CheckpointException(dir.resolve("tokenizer.json") + ": token ids are not 0.." + (n - 1) + " without gaps or repeats (token '"
                        + e.getKey() + "' has id " + id + "); re-save the tokenizer with transformers");
            }
            seen[id] = true;
        }
        return n;
    }

    static Comparator<ObjectNode> byIdField() { return Comparator.comparingInt(a -> a.get("id").asInt()); }
}
