package dev.mergeforge.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.config.MergeConfig;
import dev.mergeforge.config.ModelEntry;
import dev.mergeforge.config.Slice;
import dev.mergeforge.config.SliceSource;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.io.DerivedTensors;
import dev.mergeforge.tensor.TensorView;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * What a merge does with tokenizers (docs/config.md, "Tokenizers and vocabularies"): with
 * {@code tokenizer_source} (or a {@code tokenizer:} block) the merged vocabulary, the rows of the
 * embedding and output-head tensors laid out in it, and the tokenizer files written; with only
 * {@code chat_template}, the copied tokenizer with that template.
 */
public final class TokenizerPlan {
    private static final java.util.logging.Logger LOG = java.util.logging.Logger.getLogger(TokenizerPlan.class.getName());
    private final OutputVocab vocab;
    private final TokenSettings settings;
    private final String baseRef;
    private final Map<String, Vocab> vocabs;
    private final Checkpoint configSource;

    private TokenizerPlan(OutputVocab vocab, TokenSettings settings, String baseRef, Map<String, Vocab> vocabs, Checkpoint configSource) {
        this.vocab = vocab;
        this.settings = settings;
        this.baseRef = baseRef;
        this.vocabs = vocabs;
        this.configSource = configSource;
    }

    /** The plan of a config with a tokenizer source, else null; {@code open} gives a reference's checkpoint. */
    public static TokenizerPlan of(MergeConfig cfg, Function<String, Checkpoint> open) {
        String source = cfg.tokenizerSource();
        if (source == null) return null;
        TokenSettings ts = TokenSettings.from(cfg.raw());
        List<String> refs = referenced(cfg);
        String baseRef = cfg.baseModel() != null ? cfg.baseModel() : refs.getFirst();
        Map<String, Vocab> vocabs = new LinkedHashMap<>();
        Vocab base = read(open.apply(baseRef));
        vocabs.put(baseRef, base);
        for (String r : refs) {
            if (r.equals(baseRef)) continue;
            Checkpoint c = open.apply(r);
            if (Files.isRegularFile(c.dir().resolve("tokenizer.json"))) {
                vocabs.put(r, read(c));
            } else {
                // as mergekit: a model without a tokenizer is taken to share the base's (its own rows bound it)
                LOG.warning("model " + r + " has no tokenizer.json; its vocabulary is taken to be the base model's (as mergekit assumes)");
                Vocab b = base.stripped();
                vocabs.put(r, new Vocab(c.dir(), b.json(), b.ids(), b.added(), rowsOf(c, b)));
            }
        }
        Vocab explicit = source.equals("base") || source.equals("union") ? null : read(open.apply(source));
        OutputVocab ov = OutputVocab.build(source, baseRef, vocabs, explicit, List.copyOf(ts.tokens().keySet()));
        return new TokenizerPlan(ov, ts, cfg.baseModel(), vocabs, open.apply(source.equals("base") || source.equals("union") ? baseRef : source));
    }

    private static Vocab read(Checkpoint c) {
        JsonNode vs = c.config().get("vocab_size");
        return Vocab.read(c.dir(), vs != null && vs.canConvertToInt() ? vs.asInt() : -1);
    }

    private static int rowsOf(Checkpoint c, Vocab fallback) {
        JsonNode vs = c.config().get("vocab_size");
        return vs != null && vs.canConvertToInt() ? vs.asInt() : fallback.rows();
    }

    /** Every model the config names, base first, then in config order, each once. */
    public static List<String> referenced(MergeConfig cfg) {
        LinkedHashSet<String> s = new LinkedHashSet<>();
        if (cfg.baseModel() != null) s.add(cfg.baseModel());
        for (ModelEntry m : cfg.models()) s.add(m.model());
        for (Slice sl : cfg.slices()) for (SliceSource src : sl.sources()) s.add(src.model());
        return new ArrayList<>(s);
    }

    /** Rows of the merged vocabulary tensors: the vocabulary, padded to {@code pad_to_multiple_of}. */
    public int rows() { return settings.paddedSize(vocab.size()); }

    public OutputVocab vocab() { return vocab; }

    /** The models' views of {@code name} with rows in the merged vocabulary (see {@link PermutedEmbeddings}). */
    public Map<String, TensorView> permute(DerivedTensors derived, String name, Map<String, TensorView> sources) {
        return PermutedEmbeddings.views(derived, name, vocab, settings, baseRef, sources, vocabs);
    }

    /** Writes tokenizer.json, tokenizer_config.json (with the chat template) and the other tokenizer files into {@code out}. */
    public void write(Path out, String chatTemplate) throws IOException {
        Path from = configSource.dir();
        Files.writeString(out.resolve("tokenizer.json"), Vocab.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(vocab.tokenizer()));
        ObjectNode tc = readObject(from.resolve("tokenizer_config.json"));
        // added_tokens_decoder: transformers writes every added token here too; keep it in step with tokenizer.json
        ObjectNode dec = tc.putObject("added_tokens_decoder");
        for (JsonNode a : vocab.tokenizer().path("added_tokens")) {
            ObjectNode e = dec.putObject(a.get("id").asText());
            for (String k : List.of("content", "lstrip", "normalized", "rstrip", "single_word", "special")) if (a.has(k)) e.set(k, a.get(k));
        }
        if (chatTemplate != null) tc.put("chat_template", chatTemplate);
        Files.writeString(out.resolve("tokenizer_config.json"), Vocab.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(tc));
        // slow-tokenizer files describe the source's own vocabulary; transformers reads tokenizer.json first
        for (String f : List.of("special_tokens_map.json", "tokenizer.model", "vocab.json", "merges.txt")) copy(from, out, f);
        if (chatTemplate == null) copy(from, out, "chat_template.jinja");
    }

    /** Without a tokenizer source: the copied tokenizer_config.json gets {@code chatTemplate} (a copied chat_template.jinja would override it, so it goes). */
    public static void setChatTemplate(Path out, String chatTemplate) throws IOException {
        Path p = out.resolve("tokenizer_config.json");
        ObjectNode tc = readObject(p);
        tc.put("chat_template", chatTemplate);
        Files.writeString(p, Vocab.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(tc));
        Files.deleteIfExists(out.resolve("chat_template.jinja"));
    }

    private static ObjectNode readObject(Path p) throws IOException {
        if (!Files.isRegularFile(p)) return Vocab.JSON.createObjectNode();
        JsonNode n = Vocab.JSON.readTree(Files.readString(p));
        if (n == null || !n.isObject()) {
            throw new dev.mergeforge.errors.CheckpointException(p + " is not a JSON object; fix or delete it");
        }
        return (ObjectNode) n;
    }

    private static void copy(Path from, Path to, String f) throws IOException {
        Path s = from.resolve(f);
        if (Files.isRegularFile(s)) Files.copy(s, to.resolve(f), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    }
}
