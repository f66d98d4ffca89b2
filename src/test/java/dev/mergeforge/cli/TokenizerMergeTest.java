package dev.mergeforge.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Merging models whose tokenizers and vocabulary sizes differ, through the CLI
 * (docs/config.md, "Tokenizers and vocabularies"): the union vocabulary's order, every embedding
 * and output-head row against a computation written out here token by token, padding, the written
 * tokenizer files and the chat template.
 */
class TokenizerMergeTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int HIDDEN = 16;
    static final List<String> SPECIALS = List.of("<pad>", "<s>", "</s>", "<unk>");
    @TempDir static Path root;
    static Path a, b, c;
    @TempDir Path dir;

    /** Three models: A (base, 12 rows, its tokenizer has 2 tokens past them), B (14 rows, other order), C (10 rows). */
    @BeforeAll
    static void models() throws IOException {
        a = model("A", 12, 1, List.of("a", "b", "c", "d", "ab", "bc", "<im>", "zz", "extra1", "extra2"), Set.of("<im>"),
                List.of("a b", "b c", "z z", "extra1 extra2"));
        b = model("B", 14, 2, List.of("b", "a", "e", "f", "ab", "ef", "<im>", "<tool>", "g", "h"), Set.of("<im>", "<tool>"), List.of("e f"));
        c = model("C", 10, 3, List.of("a", "c", "e", "q", "<tool>", "<c>"), Set.of("<tool>", "<c>"), List.of());
    }

    /** A float32 Llama with {@code rows} embedding rows and a BPE tokenizer: the four specials, then {@code tokens}. */
    static Path model(String name, int rows, long seed, List<String> tokens, Set<String> added, List<String> merges) throws IOException {
        Path m = RandomModels.builder().arch(Arch.LLAMA).hidden(HIDDEN).intermediate(24).layers(2).heads(2).kvHeads(2).vocab(rows)
                .maxPositions(32).dtype(DType.F32).seed(seed).write(root.resolve(name));
        ObjectNode t = JSON.createObjectNode();
        t.put("version", "1.0");
        ArrayNode addedOut = t.putArray("added_tokens");
        ObjectNode model = t.putObject("model");
        model.put("type", "BPE");
        ObjectNode vocab = model.putObject("vocab");
        List<String> all = new ArrayList<>(SPECIALS);
        all.addAll(tokens);
        for (int id = 0; id < all.size(); id++) {
            String tok = all.get(id);
            boolean special = SPECIALS.contains(tok) || added.contains(tok) && !tok.equals("<c>");
            if (SPECIALS.contains(tok) || added.contains(tok)) {
                ObjectNode e = addedOut.addObject();
                e.put("id", id).put("content", tok).put("single_word", false).put("lstrip", false).put("rstrip", false)
                        .put("normalized", !special).put("special", special);
            }
            vocab.put(tok, id);
        }
        ArrayNode mg = model.putArray("merges");
        merges.forEach(mg::add);
        Files.writeString(m.resolve("tokenizer.json"), JSON.writeValueAsString(t));
        Files.writeString(m.resolve("tokenizer_config.json"), "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"chat_template\": \"{{ 'model " + name + "' }}\"}");
        return m;
    }

    static final List<String> UNION = List.of("<pad>", "<s>", "</s>", "<unk>", "a", "b", "c", "d", "ab", "bc", "<im>", "zz",
            "e", "f", "ef", "g", "h", "q", "<tool>", "<c>", "<new>");

    static String config(String extra) {
        return "merge_method: linear\nbase_model: " + a + "\nmodels:\n"
                + "  - {model: " + a + ", parameters: {weight: 0.5}}\n"
                + "  - {model: " + b + ", parameters: {weight: 0.3}}\n"
                + "  - {model: " + c + ", parameters: {weight: 0.2}}\n"
                + "dtype: float32\n" + extra;
    }

    static String tokenizer() {
        return "tokenizer:\n  source: union\n  pad_to_multiple_of: 8\n  tokens:\n"
            + "    <im>: {source: {kind: zero}, force: true}\n"
            + "    h: {source: {kind: model_token, model: " + c + ", token: q}}\n"
            + "    <new>: {source: {kind: zero}}\n";
    }

    @Test
    void unionVocabularyRowsPaddingAndFiles() throws Exception {
        Path out = dir.resolve("out");
        var r = MergeFixtures.cli("merge", MergeFixtures.yaml(dir, "m.yml", config(tokenizer() + "chat_template: chatml\n")).toString(),
                out.toString(), "-q", "--backend", "java");
        assertEquals(0, r.exit(), r.err());

        // the union: A's tokens below its 12 rows keep their ids; new regular tokens by model then id; then new added tokens; then tokens:
        JsonNode tj = JSON.readTree(Files.readString(out.resolve("tokenizer.json")));
        Map<String, Integer> ids = new LinkedHashMap<>();
        tj.path("model").path("vocab").properties().forEach(e -> ids.put(e.getKey(), e.getValue().asInt()));
        for (JsonNode e : tj.path("added_tokens")) ids.put(e.get("content").asText(), e.get("id").asInt());
        for (int i = 0; i < UNION.size(); i++) assertEquals(i, ids.get(UNION.get(i)), UNION.get(i));
        assertEquals(UNION.size(), ids.size(), "no other tokens: " + ids);
        assertFalse(tj.path("model").path("merges").toString().contains("extra1"), "the merge of stripped tokens goes");
        assertEquals(3, tj.path("model").path("merges").size());
        JsonNode tool = find(tj.path("added_tokens"), "<tool>"), e = find(tj.path("added_tokens"), "e");
        assertTrue(tool.get("special").asBoolean(), "added tokens keep their flags");
        assertFalse(e.get("special").asBoolean());
        assertTrue(e.get("normalized").asBoolean(), "regular tokens of other models become plain added tokens");
        JsonNode tc = JSON.readTree(Files.readString(out.resolve("tokenizer_config.json")));
        assertEquals("<s>", tc.get("bos_token").asText());
        assertEquals("<c>", tc.path("added_tokens_decoder").path("19").path("content").asText());
        assertEquals(tj.path("added_tokens").size(), tc.path("added_tokens_decoder").size());
        assertEquals(resource("chatml"), tc.get("chat_template").asText());
        assertEquals(24, JSON.readTree(Files.readString(out.resolve("config.json"))).get("vocab_size").asInt(), "21 tokens padded to 24");

        for (String tensor : List.of("model.embed_tokens.weight", "lm_head.weight")) {
            double[] want = expected(tensor, UNION, 24, true), got = MergeFixtures.values(out, tensor);
            assertEquals(want.length, got.length, tensor);
            for (int i = 0; i < want.length; i++) {
                assertEquals(want[i], got[i], 1e-6 * (1 + Math.abs(want[i])), tensor + " row " + i / HIDDEN + " column " + i % HIDDEN);
            }
        }
        try (Checkpoint m = Checkpoint.open(out.toString())) {
            assertEquals("[24, 16]", m.tensor("lm_head.weight").shape().toString());
        }
        // the native backend reads the same permuted rows: bit for bit the Java backend's result
        Path nat = dir.resolve("native");
        r = MergeFixtures.cli("merge", dir.resolve("m.yml").toString(), nat.toString(), "-q", "--backend", "native");
        assertEquals(0, r.exit(), r.err());
        for (String tensor : List.of("model.embed_tokens.weight", "lm_head.weight")) {
            assertEquals(java.util.Arrays.toString(MergeFixtures.values(out, tensor)), java.util.Arrays.toString(MergeFixtures.values(nat, tensor)), tensor);
        }
    }

    @Test
    void slicesTakeEmbeddingsFromTheFirstSliceAndTheHeadFromTheLast() throws Exception {
        Path out = dir.resolve("out");
        String cfg = "merge_method: passthrough\nslices:\n  - sources: [{model: " + a + ", layer_range: [0, 1]}]\n"
                + "  - sources: [{model: " + b + ", layer_range: [1, 2]}]\ntokenizer_source: union\ndtype: float32\n";
        var r = MergeFixtures.cli("merge", MergeFixtures.yaml(dir, "s.yml", cfg).toString(), out.toString(), "-q", "--backend", "java");
        assertEquals(0, r.exit(), r.err());
        // the union of A and B only (C is not merged; no tokens: block, so no <new>)
        List<String> vocab = UNION.stream().filter(t -> !List.of("q", "<c>", "<new>").contains(t)).toList();
        double[] emb = MergeFixtures.values(out, "model.embed_tokens.weight"), head = MergeFixtures.values(out, "lm_head.weight");
        double[] wa = MergeFixtures.values(a, "model.embed_tokens.weight"), wb = MergeFixtures.values(b, "lm_head.weight");
        assertEquals(vocab.size() * HIDDEN, emb.length);
        for (int t = 0; t < vocab.size(); t++) {
            // the only model of each slice: its own row, or zero where it lacks the token
            Integer ia = idIn(a, vocab.get(t)), ib = idIn(b, vocab.get(t));
            for (int j = 0; j < HIDDEN; j++) {
                assertEquals(ia == null ? 0 : wa[ia * HIDDEN + j], emb[t * HIDDEN + j], 0, "embed row " + vocab.get(t));
                assertEquals(ib == null ? 0 : wb[ib * HIDDEN + j], head[t * HIDDEN + j], 0, "head row " + vocab.get(t));
            }
        }
    }

    @Test
    void baseTokenizerTrimsTheBaseAndMapsTheOthersIntoIt() throws Exception {
        Path out = dir.resolve("out");
        var r = MergeFixtures.cli("merge", MergeFixtures.yaml(dir, "m.yml", config("tokenizer_source: base\n")).toString(), out.toString(), "-q", "--backend", "java");
        assertEquals(0, r.exit(), r.err());
        List<String> baseVocab = UNION.subList(0, 12);
        assertEquals(12, JSON.readTree(Files.readString(out.resolve("config.json"))).get("vocab_size").asInt());
        JsonNode tj = JSON.readTree(Files.readString(out.resolve("tokenizer.json")));
        assertFalse(tj.path("model").path("vocab").has("extra1"), "tokens past the base's rows are stripped");
        for (String tensor : List.of("model.embed_tokens.weight", "lm_head.weight")) {
            double[] want = expected(tensor, baseVocab, 12, false), got = MergeFixtures.values(out, tensor);
            assertEquals(want.length, got.length, tensor);
            for (int i = 0; i < want.length; i++) assertEquals(want[i], got[i], 1e-6 * (1 + Math.abs(want[i])), tensor + " element " + i);
        }
    }

    @Test
    void embeddingRowsPastTheTokenizerAreDroppedAndPaddingRestoresAMultiple() throws Exception {
        // like Qwen2: 16 embedding rows, 12 tokens (A's vocabulary below its rows)
        Path e = model("E", 16, 6, List.of("a", "b", "c", "d", "ab", "bc", "<im>", "zz"), Set.of("<im>"), List.of());
        String cfg = "merge_method: linear\nmodels:\n  - {model: " + e + ", parameters: {weight: 0.5}}\n  - {model: " + a
                + ", parameters: {weight: 0.5}}\ndtype: float32\ntokenizer:\n  source: base\n";
        for (int pad : new int[] {1, 16}) {
            Path out = dir.resolve("pad" + pad);
            var r = MergeFixtures.cli("merge", MergeFixtures.yaml(dir, "e" + pad + ".yml", cfg + "  pad_to_multiple_of: " + pad + "\n").toString(),
                    out.toString(), "-q", "--backend", "java");
            assertEquals(0, r.exit(), r.err());
            int rows = pad == 1 ? 12 : 16;
            assertEquals(rows, JSON.readTree(Files.readString(out.resolve("config.json"))).get("vocab_size").asInt());
            double[] got = MergeFixtures.values(out, "lm_head.weight"), we = MergeFixtures.values(e, "lm_head.weight"), wa = MergeFixtures.values(a, "lm_head.weight");
            assertEquals(rows * HIDDEN, got.length);
            for (int j = 0; j < HIDDEN; j++) {
                double mean = 0;
                for (int t = 0; t < 12; t++) {
                    double want = 0.5 * we[t * HIDDEN + j] + 0.5 * wa[t * HIDDEN + j];
                    assertEquals(want, got[t * HIDDEN + j], 1e-6, "row " + t);
                    mean += want / 12;
                }
                // padding rows: each model's mean row, merged (linear: the mean of the merged rows)
                for (int t = 12; t < rows; t++) assertEquals(mean, got[t * HIDDEN + j], 1e-6, "padding row " + t);
            }
        }
    }

    @Test
    void aModelWithoutATokenizerSharesTheBasesVocabulary() throws Exception {
        // A without its tokenizer files, merged onto B's: A's rows are read as if in B's vocabulary
        Path bare = dir.resolve("bare");
        StSurgery.copy(b, bare);
        Files.delete(bare.resolve("tokenizer.json"));
        Path out = dir.resolve("out");
        String cfg = "merge_method: linear\nbase_model: " + b + "\nmodels:\n  - {model: " + b + ", parameters: {weight: 0.5}}\n  - {model: " + bare
                + ", parameters: {weight: 0.5}}\ndtype: float32\ntokenizer_source: union\n";
        var r = MergeFixtures.cli("merge", MergeFixtures.yaml(dir, "bare.yml", cfg).toString(), out.toString(), "-q", "--backend", "java");
        assertEquals(0, r.exit(), r.err());
        assertEquals(java.util.Arrays.toString(MergeFixtures.values(b, "lm_head.weight")), java.util.Arrays.toString(MergeFixtures.values(out, "lm_head.weight")));
    }

    @Test
    void aModelsTokenizerIsTakenAsItIs() throws Exception {
        Path out = dir.resolve("out");
        var r = MergeFixtures.cli("merge", MergeFixtures.yaml(dir, "m.yml", config("tokenizer_source: " + b + "\n")).toString(), out.toString(), "-q", "--backend", "java");
        assertEquals(0, r.exit(), r.err());
        assertEquals(14, JSON.readTree(Files.readString(out.resolve("config.json"))).get("vocab_size").asInt());
        assertEquals(JSON.readTree(Files.readString(b.resolve("tokenizer.json"))), JSON.readTree(Files.readString(out.resolve("tokenizer.json"))));
        // token "a": A's row 4, B's row 5, C's row 4, at B's id 5
        double[] got = MergeFixtures.values(out, "model.embed_tokens.weight"), wa = MergeFixtures.values(a, "model.embed_tokens.weight"),
                wb = MergeFixtures.values(b, "model.embed_tokens.weight"), wc = MergeFixtures.values(c, "model.embed_tokens.weight");
        for (int j = 0; j < HIDDEN; j++) {
            double want = 0.5 * wa[4 * HIDDEN + j] + 0.3 * wb[5 * HIDDEN + j] + 0.2 * wc[4 * HIDDEN + j];
            assertEquals(want, got[5 * HIDDEN + j], 1e-6);
        }
    }

    @Test
    void chatTemplateWithoutATokenizerSourceGoesIntoTheCopiedConfig() throws Exception {
        // three models sharing A's vocabulary, with templates X (A), Y, Y
        Path a2 = copyWithTemplate(a, "A2", "{{ 'Y' }}"), a3 = copyWithTemplate(a, "A3", "{{ 'Y' }}");
        String models = "merge_method: linear\nmodels:\n  - {model: " + a + ", parameters: {weight: 1}}\n  - {model: " + a2
                + ", parameters: {weight: 1}}\n  - {model: " + a3 + ", parameters: {weight: 1}}\n";
        String literal = "{% for m in messages %}<<{{ m['content'] }}>>{% endfor %}";
        Path out = dir.resolve("lit");
        var r = MergeFixtures.cli("merge", MergeFixtures.yaml(dir, "m.yml", models + "chat_template: \"" + literal + "\"\n").toString(), out.toString(), "-q", "--backend", "java");
        assertEquals(0, r.exit(), r.err());
        JsonNode tc = JSON.readTree(Files.readString(out.resolve("tokenizer_config.json")));
        assertEquals(literal, tc.get("chat_template").asText());
        assertEquals("<s>", tc.get("bos_token").asText(), "the rest of the first model's tokenizer_config.json is kept");
        assertEquals(Files.readString(a.resolve("tokenizer.json")), Files.readString(out.resolve("tokenizer.json")));
        Path auto = dir.resolve("auto");
        r = MergeFixtures.cli("merge", MergeFixtures.yaml(dir, "a.yml", models + "chat_template: auto\n").toString(), auto.toString(), "-q", "--backend", "java");
        assertEquals(0, r.exit(), r.err());
        assertEquals("{{ 'Y' }}", JSON.readTree(Files.readString(auto.resolve("tokenizer_config.json"))).get("chat_template").asText(),
                "auto: the template most models use");
        Path named = dir.resolve("named");
        r = MergeFixtures.cli("merge", MergeFixtures.yaml(dir, "n.yml", models + "chat_template: llama3\n").toString(), named.toString(), "-q", "--backend", "java");
        assertEquals(0, r.exit(), r.err());
        assertEquals(resource("llama3"), JSON.readTree(Files.readString(named.resolve("tokenizer_config.json"))).get("chat_template").asText());
    }

    static Path copyWithTemplate(Path from, String name, String template) throws IOException {
        Path to = Files.createDirectories(dir0().resolve(name));
        try (var s = Files.list(from)) {
            for (Path p : s.toList()) Files.copy(p, to.resolve(p.getFileName()));
        }
        Files.writeString(to.resolve("tokenizer_config.json"), "{\"bos_token\": \"<s>\", \"chat_template\": \"" + template + "\"}");
        return to;
    }

    static Path dir0() { return root; }

    @Test
    void badTokenizerSettingsAreOneLineErrors() throws Exception {
        List<Path> in = List.of(a, b, c);
        CliFailure.mergeFails(2, MergeFixtures.yaml(dir, "1.yml", config("tokenizer_source: union\nchat_template: chatmll\n")), dir.resolve("o1"), in, List.of(),
                "chat_template", "chatmll", "chatml");
        CliFailure.mergeFails(2, MergeFixtures.yaml(dir, "2.yml", config("tokenizer:\n  tokens:\n    q: {source: " + b + "}\n")), dir.resolve("o2"), in,
                List.of(), "tokenizer.tokens['q'].source", "not in");
        CliFailure.mergeFails(2, MergeFixtures.yaml(dir, "3.yml", config("tokenizer:\n  tokens:\n    q: {source: {kind: zero}, forse: true}\n")),
                dir.resolve("o3"), in, List.of(), "tokenizer.tokens['q'].forse", "unknown key");
        CliFailure.mergeFails(2, MergeFixtures.yaml(dir, "4.yml", config("tokenizer:\n  pad_to_multiple_of: 0\n")), dir.resolve("o4"), in,
                List.of(), "tokenizer.pad_to_multiple_of");
        CliFailure.mergeFails(2, MergeFixtures.yaml(dir, "5.yml", config("tokenizer:\n  tokens:\n    q: {source: {kind: model_token, model: " + b + ", token_id: 99}}\n")),
                dir.resolve("o5"), in, List.of(), "tokenizer.tokens['q'].source", "99", "14 rows");
        CliFailure.mergeFails(2, MergeFixtures.yaml(dir, "6.yml", config("tokenizer:\n  tokens:\n    q: {source: {kind: model_token, model: " + b + ", token: zq}}\n")),
                dir.resolve("o6"), in, List.of(), "tokenizer.tokens['q'].source.token", "'zq'");
        CliFailure.mergeFails(2, MergeFixtures.yaml(dir, "7.yml", config("tokenizer:\n  tokens:\n    q: {source: /elsewhere}\n")),
                dir.resolve("o7"), in, List.of(), "'/elsewhere' is not one of the merged models");
        // a config.json vocab_size past the tensor's rows; an embedding of another width
        Path big = dir.resolve("big");
        StSurgery.copy(a, big);
        ObjectNode bigCfg = (ObjectNode) JSON.readTree(Files.readString(big.resolve("config.json")));
        Files.writeString(big.resolve("config.json"), JSON.writeValueAsString(bigCfg.put("vocab_size", 14)));
        CliFailure.mergeFails(1, MergeFixtures.yaml(dir, "8.yml", config("tokenizer_source: union\n").replace(b.toString(), big.toString())),
                dir.resolve("o8"), List.of(a, big, c), List.of(), "model.embed_tokens.weight", "12 rows", "vocab_size");
        Path narrow = RandomModels.builder().arch(Arch.LLAMA).hidden(8).intermediate(24).layers(2).heads(2).kvHeads(2).vocab(12)
                .maxPositions(32).dtype(DType.F32).seed(4).write(dir.resolve("narrow"));
        CliFailure.mergeFails(1, MergeFixtures.yaml(dir, "9.yml", config("tokenizer_source: union\n").replace(b.toString(), narrow.toString())),
                dir.resolve("o9"), List.of(a, narrow, c), List.of(), "model.embed_tokens.weight", "[12, 8]", "widths must match");
    }

    /** The merged rows, written out token by token from the rules (independent of the code under test). */
    static double[] expected(String tensor, List<String> vocab, int padded, boolean rules) {
        Map<Path, double[]> w = Map.of(a, MergeFixtures.values(a, tensor), b, MergeFixtures.values(b, tensor), c, MergeFixtures.values(c, tensor));
        Map<Path, Double> weight = Map.of(a, 0.5, b, 0.3, c, 0.2);
        double[] out = new double[padded * HIDDEN];
        Map<Path, double[][]> perModel = new LinkedHashMap<>();
        for (Path m : List.of(a, b, c)) {
            double[][] rows = new double[padded][];
            for (int t = 0; t < vocab.size(); t++) rows[t] = rowFor(m, vocab.get(t), w, rules);
            double[] mean = new double[HIDDEN];
            for (int t = 0; t < vocab.size(); t++) for (int j = 0; j < HIDDEN; j++) mean[j] += rows[t][j] / vocab.size();
            for (int t = vocab.size(); t < padded; t++) rows[t] = mean;
            perModel.put(m, rows);
        }
        for (int t = 0; t < padded; t++) {
            for (int j = 0; j < HIDDEN; j++) {
                double s = 0;
                for (Path m : List.of(a, b, c)) s += weight.get(m) * perModel.get(m)[t][j];
                out[t * HIDDEN + j] = s; // weights sum to 1
            }
        }
        return out;
    }

    /** Model m's row of token tok: its own, or the default the rules give. */
    static double[] rowFor(Path m, String tok, Map<Path, double[]> w, boolean rules) {
        if (rules && (tok.equals("<im>") || tok.equals("<new>"))) return new double[HIDDEN];     // tokens: zero (forced for <im>)
        Integer own = idIn(m, tok);
        if (own != null) return row(w.get(m), own);
        return switch (tok) {
            case "c", "d", "ab", "bc", "zz", "a", "b", "<im>" -> row(w.get(a), idIn(a, tok));  // the base has it
            case "e", "<tool>" -> avg(row(w.get(b), idIn(b, tok)), row(w.get(c), idIn(c, tok)));  // B and C, not the base: their mean
            case "f", "ef", "g" -> row(w.get(b), idIn(b, tok));                          // only B
            case "h" -> rules ? row(w.get(c), idIn(c, "q")) : row(w.get(b), idIn(b, tok));  // tokens: C's row of q
            case "q", "<c>" -> row(w.get(c), idIn(c, tok));                              // only C
            default -> throw new IllegalStateException(tok);
        };
    }

    static Integer idIn(Path m, String tok) {
        List<String> t = m == a ? List.of("a", "b", "c", "d", "ab", "bc", "<im>", "zz")
                : m == b ? List.of("b", "a", "e", "f", "ab", "ef", "<im>", "<tool>", "g", "h") : List.of("a", "c", "e", "q", "<tool>", "<c>");
        if (SPECIALS.contains(tok)) return SPECIALS.indexOf(tok);
        int i = t.indexOf(tok);
        return i < 0 ? null : 4 + i;
    }

    static double[] row(double[] w, int r) { return java.util.Arrays.copyOfRange(w, r * HIDDEN, (r + 1) * HIDDEN); }

    static double[] avg(double[] x, double[] y) {
        double[] o = new double[x.length];
        for (int i = 0; i < o.length; i++) o[i] = (x[i] + y[i]) / 2;
        return o;
    }

    static JsonNode find(JsonNode added, String content) {
        for (JsonNode e : added) if (e.get("content").asText().equals(content)) return e;
        throw new AssertionError(content + " not among the added tokens");
    }

    static String resource(String name) throws IOException {
        try (InputStream in = TokenizerMergeTest.class.getResourceAsStream("/dev/mergeforge/tokenizer/chat_templates/" + name + ".jinja")) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }
}
