package dev.mergeforge.io;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.TensorView;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * A PEFT LoRA adapter directory ({@code adapter_config.json} + {@code adapter_model.safetensors})
 * applied to its base model's tensors as the merge reads them: W' = W + s·B·A with s = α/r
 * (rsLoRA: α/√r), per-module r and α from {@code rank_pattern} / {@code alpha_pattern};
 * {@code fan_in_fan_out} (GPT-2's Conv1D, W stored [in, out]) and embedding adapters
 * ({@code lora_embedding_A/B}) add the transposed product; {@code lora_B.bias} adds s·Δb to the
 * module's bias; {@code modules_to_save} and saved biases replace the base tensor. See docs/io.md, "LoRA adapters".
 *
 * The adapter is a local directory or a hub id found in the local Hugging Face cache, as models are.
 *
 * <p>Lifetime: the adapter's file is mapped until {@link #close()}.
 */
public final class LoraAdapter implements AutoCloseable {
    private static final String PREFIX = "base_model.model.";

    /** One adapted weight: A [r, in], B [out, r], the scale, and whether the product is added transposed. */
    record Pair(TensorView a, TensorView b, double scale, boolean transposed) {}

    private final Path dir;
    private final SafetensorsFile file;
    private final Map<String, Pair> pairs = new LinkedHashMap<>();
    private final Map<String, TensorView> replaced = new LinkedHashMap<>();
    /** {@code <m>.bias} to the delta lora_B.bias that is added to it, scaled like the module's product. */
    private final Map<String, TensorView> biasDeltas = new LinkedHashMap<>();
    private final Map<String, Double> biasScales = new LinkedHashMap<>();

    private LoraAdapter(Path dir, SafetensorsFile file) {
        this.dir = dir;
        this.file = file;
    }

    /** True when {@code dir} looks like a PEFT adapter (it has adapter_config.json). */
    public static boolean isAdapter(Path dir) { return Files.isRegularFile(dir.resolve("adapter_config.json")); }

    /** Reads and checks the adapter; every problem is a {@link CheckpointException} naming the file, key or tensor. */
    public static LoraAdapter open(String ref) { return open(ref, HfCache.defaultRoot()); }

    /** As {@link #open(String)}, looking hub ids {@code org/name[@revision]} up in the cache rooted at {@code hfCacheRoot}. */
    public static LoraAdapter open(String ref, Path hfCacheRoot) {
        Path dir = Path.of(ref.startsWith("~/") ? System.getProperty("user.home") + ref.substring(1) : ref).toAbsolutePath().normalize();
        if (!Files.isDirectory(dir)) {
            HfCache.HubId id = Files.exists(dir) ? null : HfCache.parse(ref);
            if (id == null) throw new CheckpointException("LoRA adapter '" + ref + "' not found: no directory " + dir + "; give the adapter's directory");
            dir = HfCache.resolve(id, hfCacheRoot, ref).toAbsolutePath().normalize();
        }
        Path cfgPath = dir.resolve("adapter_config.json");
        if (!Files.isRegularFile(cfgPath)) throw new CheckpointException("LoRA adapter " + dir + " has no adapter_config.json; give a PEFT adapter directory (save_pretrained of a PeftModel)");
        JsonNode cfg;
        try {
            cfg = SafetensorsFile.JSON.readTree(Files.readString(cfgPath));
        } catch (IOException e) {
            throw new CheckpointException(cfgPath + " is not valid JSON (" + e.getMessage().lines().findFirst().orElse("") + "); re-save the adapter", e);
        }
        String type = cfg.path("peft_type").asText("LORA");
        if (!type.equals("LORA")) throw new CheckpointException(cfgPath + ": peft_type " + type + " is not supported; only LoRA adapters (peft_type LORA) can be applied");
        if (cfg.path("use_dora").asBoolean(false)) throw new CheckpointException(cfgPath + ": use_dora is true; DoRA adapters are not supported: merge it into its model (peft merge_and_unload) and list that directory");
        Path weights = dir.resolve("adapter_model.safetensors");
        if (!Files.isRegularFile(weights)) {
            throw new CheckpointException("LoRA adapter " + dir + " has no adapter_model.safetensors" + (Files.exists(dir.resolve("adapter_model.bin"))
                    ? " (only adapter_model.bin, a pickle): re-save it with safe_serialization=True" : "; re-save the adapter with PEFT"));
        }
        LoraAdapter ad = new LoraAdapter(dir, SafetensorsFile.open(weights));
        try {
            ad.index(cfg, cfgPath);
        } catch (RuntimeException e) {
            ad.close();
            throw e;
        }
        return ad;
    }

    private void index(JsonNode cfg, Path cfgPath) {
        if (!cfg.path("r").canConvertToInt() || cfg.path("r").asInt() < 1) throw new CheckpointException(cfgPath + ": r must be a positive integer; fix adapter_config.json");
        int r = cfg.get("r").asInt();
        double alpha = cfg.path("lora_alpha").isNumber() ? cfg.get("lora_alpha").asDouble() : 8; // PEFT's default
        boolean rs = cfg.path("use_rslora").asBoolean(false), fanInFanOut = cfg.path("fan_in_fan_out").asBoolean(false);
        Map<String, TensorView> as = new LinkedHashMap<>(), bs = new LinkedHashMap<>(), bBias = new LinkedHashMap<>();
        List<String> embeddingModules = new ArrayList<>();
        for (String key : file.names()) {
            if (!key.startsWith(PREFIX)) throw new CheckpointException(file.path() + ": tensor '" + key + "' is not named " + PREFIX + "<module>...; re-save the adapter with PEFT");
            String rest = key.substring(PREFIX.length());
            if (rest.endsWith(".lora_A.weight")) as.put(rest.substring(0, rest.length() - 14), file.tensor(key));
            else if (rest.endsWith(".lora_B.weight")) bs.put(rest.substring(0, rest.length() - 14), file.tensor(key));
            else if (rest.endsWith(".lora_embedding_A")) { String m = rest.substring(0, rest.length() - 17); as.put(m, file.tensor(key)); embeddingModules.add(m); }
            else if (rest.endsWith(".lora_embedding_B")) bs.put(rest.substring(0, rest.length() - 17), file.tensor(key));
            else if (rest.endsWith(".lora_B.bias")) bBias.put(rest.substring(0, rest.length() - 12), file.tensor(key));
            else if (rest.endsWith(".weight") || rest.endsWith(".bias")) {
                String module = rest.substring(0, rest.lastIndexOf('.'));
                if (!rest.endsWith(".bias") && !matchesAny(module, cfg.path("modules_to_save"))) {
                    throw new CheckpointException(file.path() + ": tensor '" + key + "' replaces " + rest + " but '" + module
                            + "' is not in modules_to_save of adapter_config.json; fix the adapter");
                }
                replaced.put(rest, file.tensor(key));
            } else {
                throw new CheckpointException(file.path() + ": tensor '" + key + "' is not a LoRA weight (lora_A/lora_B/lora_embedding_A/B), a module to save or a bias"
                        + (rest.contains("lora_magnitude_vector") ? " (a DoRA magnitude: DoRA is not supported)" : "") + "; re-save the adapter with PEFT");
            }
        }
        for (String m : as.keySet()) if (!bs.containsKey(m)) throw new CheckpointException(file.path() + ": module '" + m + "' has lora_A but no lora_B; re-save the adapter");
        for (String m : bs.keySet()) if (!as.containsKey(m)) throw new CheckpointException(file.path() + ": module '" + m + "' has lora_B but no lora_A; re-save the adapter");
        JsonNode targets = cfg.path("target_modules");
        for (var e : as.entrySet()) {
            String m = e.getKey();
            if (!targets.isMissingNode() && !targets.isNull() && !"all-linear".equals(targets.asText()) && !matchesTargets(m, targets)) {
                throw new CheckpointException(file.path() + ": module '" + m + "' has LoRA weights but target_modules " + targets + " does not name it; fix adapter_config.json");
            }
            int rm = patternValue(cfg.path("rank_pattern"), m, r, cfgPath).intValue();
            double am = patternValue(cfg.path("alpha_pattern"), m, alpha, cfgPath).doubleValue();
            TensorView a = e.getValue(), b = bs.get(m);
            boolean emb = embeddingModules.contains(m);
            if (a.shape().rank() != 2 || b.shape().rank() != 2 || a.shape().dim(0) != rm && !emb || b.shape().dim(1) != a.shape().dim(0)) {
                throw new CheckpointException(file.path() + ": module '" + m + "' has lora_A " + a.shape() + " and lora_B " + b.shape()
                        + ", not [r, in] and [out, r] with r = " + rm + " (adapter_config.json); re-save the adapter");
            }
            if (emb && a.shape().dim(0) != rm) throw new CheckpointException(file.path() + ": module '" + m + "' has rank " + a.shape().dim(0) + " but r = " + rm + "; fix adapter_config.json");
            double scale = rs ? am / Math.sqrt(rm) : am / rm;
            pairs.put(m + ".weight", new Pair(a, b, scale, fanInFanOut || emb));
            TensorView bias = bBias.remove(m);
            if (bias != null) {
                if (bias.shape().rank() != 1 || bias.shape().dim(0) != b.shape().dim(0)) {
                    throw new CheckpointException(file.path() + ": module '" + m + "' has lora_B.bias " + bias.shape() + ", not [" + b.shape().dim(0) + "]; re-save the adapter");
                }
                biasDeltas.put(m + ".bias", bias);
                biasScales.put(m + ".bias", scale);
            }
        }
        for (String m : bBias.keySet()) throw new CheckpointException(file.path() + ": module '" + m + "' has lora_B.bias but no lora_A/lora_B; re-save the adapter");
    }

    /** PEFT's per-module override: the first pattern key k with the module name matching (^|.*\.)k$, else the default. */
    private static Number patternValue(JsonNode patterns, String module, Number dflt, Path cfgPath) {
        if (!patterns.isObject()) return dflt;
        for (var it = patterns.properties().iterator(); it.hasNext(); ) {
            var e = it.next();
            try {
                if (Pattern.compile("(^|.*\\.)" + e.getKey() + "$").matcher(module).matches()) return e.getValue().numberValue();
            } catch (PatternSyntaxException ex) {
                throw new CheckpointException(cfgPath + ": pattern '" + e.getKey() + "' is not a valid regular expression; fix adapter_config.json");
            }
        }
        return dflt;
    }

    /** PEFT's target_modules: a list matches a module named exactly so or ending in ".name"; a string is a full-match regex. */
    private static boolean matchesTargets(String module, JsonNode targets) {
        if (targets.isTextual()) return Pattern.compile(targets.asText()).matcher(module).matches();
        return matchesAny(module, targets);
    }

    private static boolean matchesAny(String module, JsonNode names) {
        for (JsonNode t : names) if (module.equals(t.asText()) || module.endsWith("." + t.asText())) return true;
        return false;
    }

    public Path dir() { return dir; }

    /** Base tensor names this adapter changes (adapted weights, then replaced tensors). */
    public List<String> touched() {
        List<String> l = new ArrayList<>(pairs.keySet());
        l.addAll(replaced.keySet());
        l.addAll(biasDeltas.keySet());
        return l;
    }

    public boolean touches(String name) { return pairs.containsKey(name) || replaced.containsKey(name) || biasDeltas.containsKey(name); }

    /** Checks the adapter against its base: every tensor it changes exists with a fitting shape. */
    public void checkAgainst(Checkpoint base) {
        for (String n : touched()) {
            if (!base.contains(n)) {
                throw new CheckpointException("LoRA adapter " + dir + " changes '" + n + "', which base model " + base.ref()
                        + " does not have; pair the adapter with the model it was trained on");
            }
            TensorView w = base.tensor(n);
            Shape want = shapeOf(n);
            if (!w.shape().equals(want)) {
                throw new CheckpointException("LoRA adapter " + dir + " gives '" + n + "' shape " + want + " but base model " + base.ref()
                        + " has " + w.shape() + "; pair the adapter with the model it was trained on");
            }
        }
    }

    private Shape shapeOf(String n) {
        TensorView rep = replaced.get(n);
        if (rep != null) return rep.shape();
        TensorView bias = biasDeltas.get(n);
        if (bias != null) return bias.shape();
        Pair p = pairs.get(n);
        long out = p.b().shape().dim(0), in = p.a().shape().dim(1);
        return p.transposed() ? Shape.of(in, out) : Shape.of(out, in);
    }

    /**
     * The view the merge reads for base tensor {@code w} (a stored tensor of the base model): the saved
     * replacement, or W + s·B·A computed for just the elements the merge reads.
     */
    public TensorView apply(DerivedTensors derived, TensorView w) {
        TensorView rep = replaced.get(w.name());
        if (rep != null) return rep;
        TensorView bias = biasDeltas.get(w.name());
        if (bias != null) {
            double s = biasScales.get(w.name());
            // b' = b + s·Δb
            return derived.create(w.name(), w.dtype(), w.shape(), w.source() + " + LoRA " + dir, (from, n, dst) -> {
                for (long i = 0; i < n; i++) {
                    Elements.put(dst, w.dtype(), i, Elements.get(w.data(), w.dtype(), from + i) + s * Elements.get(bias.data(), bias.dtype(), from + i));
                }
            });
        }
        Product product = new Product(w, pairs.get(w.name()));
        return derived.create(w.name(), w.dtype(), w.shape(), w.source() + " + LoRA " + dir, product::fill);
    }

    /**
     * W + s·B·A (or its transpose) for any range of elements, row by row, each element summed in double
     * and rounded once: the same bits whatever the range. The factor indexed by the column (A, or B
     * transposed: rank × cols doubles) is read once, when first needed; the one indexed by the row is
     * read for each row the range touches.
     */
    static final class Product {
        private final TensorView w;
        private final Pair p;
        private final int rank, rows, cols;
        private double[] colFactor;

        Product(TensorView w, Pair p) {
            this.w = w;
            this.p = p;
            this.rank = (int) p.a().shape().dim(0);
            this.rows = (int) w.shape().dim(0);
            this.cols = (int) w.shape().dim(1);
        }

        private synchronized double[] colFactor() {
            if (colFactor != null) return colFactor;
            TensorView byCol = p.transposed() ? p.b() : p.a();
            double[] f = new double[rank * cols];
            for (int k = 0; k < rank; k++) {
                for (int j = 0; j < cols; j++) {
                    // not transposed: A[k, j]; transposed: B[j, k]
                    f[k * cols + j] = p.transposed() ? Elements.get(byCol.data(), byCol.dtype(), (long) j * rank + k)
                            : Elements.get(byCol.data(), byCol.dtype(), (long) k * cols + j);
                }
            }
            return colFactor = f;
        }

        /** Elements [from, from + n) of W + s·B·A into dst. */
        void fill(long from, long n, MemorySegment dst) {
            double[] cf = colFactor();
            TensorView byRow = p.transposed() ? p.a() : p.b();
            double[] coef = new double[rank];
            for (long i = from / cols, last = (from + n - 1) / cols; i <= last; i++) {
                // not transposed: B[i, k]; transposed: A[k, i]
                for (int k = 0; k < rank; k++) {
                    coef[k] = p.scale() * (p.transposed() ? Elements.get(byRow.data(), byRow.dtype(), (long) k * rows + i)
                            : Elements.get(byRow.data(), byRow.dtype(), i * rank + k));
                }
                long at = i * cols;
                int j0 = (int) (Math.max(from, at) - at), j1 = (int) (Math.min(from + n, at + cols) - at);
                for (int j = j0; j < j1; j++) {
                    // W[i, j] + Σ_k s·B[i, k]·A[k, j]
                    double v = Elements.get(w.data(), w.dtype(), at + j);
                    for (int k = 0; k < rank; k++) v += coef[k] * cf[k * cols + j];
                    Elements.put(dst, w.dtype(), at + j - from, v);
                }
            }
            // the base rows' pages leave this process behind the reader (they stay in the page cache), with those the kernel mapped around them
            if (w.data().isMapped()) Madvise.dontNeedAround(w.data(), from * w.dtype().byteSize(), n * w.dtype().byteSize());
        }
    }

    @Override public void close() { file.close(); }
}
