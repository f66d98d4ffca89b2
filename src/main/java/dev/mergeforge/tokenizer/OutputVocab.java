package dev.mergeforge.tokenizer;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.logging.Logger;

/**
 * The merged model's vocabulary, built as mergekit 0.1.4 builds it (docs/config.md, "Tokenizers
 * and vocabularies"), and for each input model the permutation from output ids to its own rows.
 *
 * @param tokenizer the tokenizer.json to write (the source's, stripped or with tokens appended)
 * @param tokens    the output tokens by id
 * @param perms     model reference to {@code perm[outId]} = that model's row, or -1 where it lacks the token
 */
public record OutputVocab(ObjectNode tokenizer, List<String> tokens, Map<String, int[]> perms) {
    private static final Logger LOG = Logger.getLogger(OutputVocab.class.getName());

    public OutputVocab {
        tokens = List.copyOf(tokens);
        perms = Collections.unmodifiableMap(new LinkedHashMap<>(perms));
    }

    public int size() { return tokens.size(); }

    /** The output row of {@code token}, or -1. */
    public int idOf(String token) { return tokens.indexOf(token); }

    /**
     * Builds the output vocabulary.
     *
     * @param source    "base", "union", or a model reference whose tokenizer is taken as it is
     * @param baseRef   the base model (or the first model when there is none)
     * @param vocabs    every referenced model's vocabulary, base first, then in config order
     * @param explicit  the tokenizer of a model {@code source} (null for base/union)
     * @param addTokens the tokens of the config's {@code tokenizer.tokens}, added when missing
     */
    public static OutputVocab build(String source, String baseRef, Map<String, Vocab> vocabs, Vocab explicit, List<String> addTokens) {
        Map<String, Vocab> perModel = new LinkedHashMap<>(vocabs);
        Vocab base = vocabs.get(baseRef).stripped();
        perModel.put(baseRef, base);
        Builder b = new Builder(switch (source) {
            case "base" -> base;
            case "union" -> base;
            default -> explicit;
        });
        if (source.equals("union")) union(b, base, vocabs, baseRef);
        for (String t : addTokens) b.addIfMissing(t, null);
        Map<String, int[]> perms = new LinkedHashMap<>();
        for (var e : perModel.entrySet()) {
            Vocab v = e.getValue();
            int[] p = new int[b.tokens.size()];
            for (int id = 0; id < p.length; id++) {
                Integer own = v.ids().get(b.tokens.get(id));
                p[id] = own == null || own >= v.rows() ? -1 : own;
            }
            perms.put(e.getKey(), p);
        }
        return new OutputVocab(b.tree, b.tokens, perms);
    }

    /**
     * mergekit's union: the regular tokens of every model (base first), then every model's added
     * tokens, each appended once to the stripped base tokenizer as an added token. mergekit walks
     * each model's tokens in the order of a hash map, which differs from run to run; we take them
     * in id order, so the output is reproducible.
     */
    private static void union(Builder b, Vocab base, Map<String, Vocab> vocabs, String baseRef) {
        Map<String, ObjectNode> addedFirst = new LinkedHashMap<>();
        List<String> regular = new ArrayList<>();
        Set<String> seenRegular = new java.util.HashSet<>();
        for (var e : vocabs.entrySet()) {
            Vocab v = e.getKey().equals(baseRef) ? base : e.getValue();
            Set<String> addedHere = v.addedContents();
            for (var t : v.byId()) {
                if (t.getValue() >= v.rows() || addedHere.contains(t.getKey())) continue;
                if (seenRegular.add(t.getKey())) regular.add(t.getKey());
            }
            for (var a : v.added().entrySet()) {
                if (a.getKey() >= v.rows()) continue;
                String c = a.getValue().get("content").asText();
                ObjectNode first = addedFirst.get(c);
                if (first == null) addedFirst.put(c, a.getValue());
                else if (!sameFlags(first, a.getValue())) LOG.warning("token '" + c + "' is added with different settings in " + v.dir() + "; the first model's are kept (as mergekit does)");
            }
        }
        for (String t : regular) if (!addedFirst.containsKey(t)) b.addIfMissing(t, null);
        for (ObjectNode a : addedFirst.values()) b.addIfMissing(a.get("content").asText(), a);
    }

    private static boolean sameFlags(ObjectNode a, ObjectNode b) {
        ObjectNode x = a.deepCopy(), y = b.deepCopy();
        x.remove("id");
        y.remove("id");
        return x.equals(y);
    }

    /** The tokenizer being built: its tree and its tokens by id. */
    private static final class Builder {
        final ObjectNode tree;
        final List<String> tokens;
        final Map<String, Integer> ids = new java.util.HashMap<>();

        Builder(Vocab from) {
            tree = from.json().deepCopy();
            String[] byId = new String[from.size()];
            for (var e : from.ids().entrySet()) byId[e.getValue()] = e.getKey();
            tokens = new ArrayList<>(List.of(byId));
            for (int i = 0; i < byId.length; i++) ids.put(byId[i], i);
        }

        /** Appends {@code content} as an added token (with {@code like}'s flags, or those of a plain added token) unless present. */
        void addIfMissing(String content, ObjectNode like) {
            if (ids.containsKey(content)) return;
            int id = tokens.size();
            ObjectNode a = Vocab.JSON.createObjectNode();
            a.put("id", id);
            a.put("content", content);
            a.put("single_word", like != null && like.path("single_word").asBoolean(false));
            a.put("lstrip", like != null && like.path("lstrip").asBoolean(false));
            a.put("rstrip", like != null && like.path("rstrip").asBoolean(false));
            // transformers' add_tokens(str) makes a non-special token, normalized
            a.put("normalized", like == null || like.path("normalized").asBoolean(true));
            a.put("special", like != null && like.path("special").asBoolean(false));
            JsonArrays.addedTokens(tree).add(a);
            tokens.add(content);
            ids.put(content, id);
        }
    }

    /** Small helpers on tokenizer.json trees. */
    static final class JsonArrays {
        private JsonArrays() {}

        static ArrayNode addedTokens(ObjectNode tree) {
            return tree.path("added_tokens").isArray() ? (ArrayNode) tree.get("added_tokens") : tree.putArray("added_tokens");
        }
    }
}
