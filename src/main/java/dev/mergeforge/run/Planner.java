package dev.mergeforge.run;

import com.fasterxml.jackson.databind.JsonNode;
import dev.mergeforge.arch.Architectures;
import dev.mergeforge.arch.TensorRoles;
import dev.mergeforge.config.ConfigReader;
import dev.mergeforge.config.MergeConfig;
import dev.mergeforge.config.ModelEntry;
import dev.mergeforge.config.Slice;
import dev.mergeforge.config.SliceSource;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.Params;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.io.DerivedTensors;
import dev.mergeforge.io.LoraAdapter;
import dev.mergeforge.tokenizer.TokenizerPlan;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Turns a validated config into the list of output tensors with every input tensor, parameter
 * and dtype resolved, checking that the models agree (architecture, names, shapes) before a byte
 * of data is read. Checkpoints are opened once per distinct reference and owned by {@link Inputs}.
 */
public final class Planner {
    private static final java.util.logging.Logger LOG = java.util.logging.Logger.getLogger(Planner.class.getName());

    private Planner() {}

    /** The opened input models, closed together. */
    public static final class Inputs implements AutoCloseable {
        private final Map<String, Checkpoint> byRef = new LinkedHashMap<>();
        private final DerivedTensors derived = new DerivedTensors();
        private final Map<Checkpoint, LoraAdapter> adapters = new java.util.IdentityHashMap<>();
        private final Map<Checkpoint, Map<String, TensorView>> adapted = new java.util.IdentityHashMap<>();
        private ModelStats stats;
        private java.util.function.Consumer<String> crimes;

        /**
         * mergekit's {@code --allow-crimes}: models of different architectures are merged anyway,
         * the difference reported through {@code warn} instead of refused.
         */
        public Inputs allowCrimes(java.util.function.Consumer<String> warn) {
            crimes = Objects.requireNonNull(warn);
            return this;
        }

        private TokenizerPlan tokenizer;
        private boolean tokenizerPlanned;

        public Checkpoint get(String ref) {
            Checkpoint c = byRef.get(ref);
            if (c == null) {
                int plus = ref.indexOf('+');
                // mergekit's base+adapter: the base, read through the adapter (docs/io.md, "LoRA adapters")
                c = Checkpoint.open(plus < 0 ? ref : ref.substring(0, plus));
                byRef.put(ref, c);
                if (plus >= 0) {
                    LoraAdapter a = LoraAdapter.open(ref.substring(plus + 1));
                    adapters.put(c, a);
                    a.checkAgainst(c);
                }
            }
            return c;
        }

        public List<Checkpoint> all() { return List.copyOf(byRef.values()); }

        /** Tensor {@code name} of an opened model, as the merge reads it. */
        public TensorView tensor(Checkpoint c, String name) {
            LoraAdapter a = adapters.get(c);
            if (a == null || !a.touches(name)) return c.tensor(name);
            // one adapted view per (model, tensor) within a planned tensor: a derived view belongs to one planned tensor
            return adapted.computeIfAbsent(c, k -> new HashMap<>()).computeIfAbsent(name, k -> a.apply(derived, c.tensor(name)));
        }

        /** Starts the inputs of the next planned tensor (adapted views are not shared between planned tensors). */
        void beginTensor() { adapted.clear(); }

        /** Inputs computed while the merge reads them (permuted embeddings, adapted weights); see {@link DerivedTensors}. */
        public DerivedTensors derived() { return derived; }

        /** The tokenizer plan of {@code cfg} (null without a tokenizer source), built on first use. */
        public TokenizerPlan tokenizer(MergeConfig cfg) {
            if (!tokenizerPlanned) {
                tokenizer = TokenizerPlan.of(cfg, this::get);
                tokenizerPlanned = true;
            }
            return tokenizer;
        }

        /** The per-model statistics files of a data-informed merge, opened by the planner and closed with the models. */
        ModelStats stats(MethodSpec.Stats kind) {
            if (stats == null) stats = new ModelStats(kind);
            return stats;
        }

        @Override public void close() {
            if (stats != null) stats.close();
            stats = null;
            derived.close();
            for (LoraAdapter a : adapters.values()) a.close();
            adapters.clear();
            for (Checkpoint c : byRef.values()) c.close();
            byRef.clear();
        }
    }

    /** The plan: output tensors in write order, the model whose config/tokenizer the output takes, and its layer count. */
    public record Plan(MergeConfig config, List<PlannedTensor> tensors, Checkpoint reference, int outLayers) {
        public long inBytes() { return tensors.stream().mapToLong(PlannedTensor::inBytes).sum(); }

        public long outBytes() { return tensors.stream().mapToLong(PlannedTensor::outBytes).sum(); }

        public long largestElements() { return tensors.stream().mapToLong(t -> t.shape().numel()).max().orElse(0); }

        public int maxInputs() { return tensors.stream().mapToInt(t -> t.inputs().size() + 1).max().orElse(1); }
    }

    public static Plan plan(MergeConfig cfg, Inputs inputs) {
        return plan(cfg, inputs, StatsLocator.calibrating(StatsLocator.defaultCacheDir(), LOG::info));
    }

    /** As {@link #plan(MergeConfig, Inputs)}, finding data-informed methods' per-model statistics with {@code locator}. */
    public static Plan plan(MergeConfig cfg, Inputs inputs, StatsLocator locator) {
        Plan plan = cfg.slices().isEmpty() ? planModels(cfg, inputs, locator) : planSlices(cfg, inputs, locator);
        // the tokenizer is written after the last tensor: refuse an unusable source or chat template now, not hours later
        OutputFiles.tokenizerSource(cfg, plan, inputs);
        OutputFiles.outputConfig(plan, DType.F32);
        OutputFiles.chatTemplate(cfg, inputs);
        return plan;
    }

    /** {@code models:} configs: every tensor of the reference model, merged across all models. */
    static Plan planModels(MergeConfig cfg, Inputs in, StatsLocator locator) {
        MethodSpec spec = cfg.method();
        Checkpoint base = cfg.baseModel() == null ? null : in.get(cfg.baseModel());
        List<Checkpoint> models = new ArrayList<>();
        int baseIndex = -1;
        for (int i = 0; i < cfg.models().size(); i++) {
            ModelEntry m = cfg.models().get(i);
            models.add(in.get(m.model()));
            if (m.model().equals(cfg.baseModel())) baseIndex = i;
        }
        Checkpoint ref = base != null ? base : models.getFirst();
        checkArchitectures(ref, in.all(), in.crimes);
        List<String> refs = cfg.models().stream().map(ModelEntry::model).toList();
        ModelStats stats = spec.stats() == MethodSpec.Stats.NONE ? null : in.stats(spec.stats());
        for (int i = 0; stats != null && i < models.size(); i++) {
            ModelEntry m = cfg.models().get(i);
            stats.add(models.get(i), m.calibration() != null ? m.calibration() : cfg.calibration(), "models[" + i + "]", locator);
        }
        int layers = numLayers(ref);
        TensorRoles roles = Architectures.roles(ref.config());
        TokenizerPlan tok = in.tokenizer(cfg);
        List<PlannedTensor> out = new ArrayList<>();
        for (String name : ref.names()) {
            in.beginTensor();
            TensorView r = in.tensor(ref, name);
            int layer = roles.layerOf(name);
            if (layer >= layers) throw beyondStack(ref, name, layer, layers);
            double t = ConfigReader.layerT(layer, roles.isPre(name), layers, cfg.postWeightsT());
            TensorView b = base == null ? null : in.tensor(base, name);
            List<TensorView> views = new ArrayList<>();
            List<Params> params = new ArrayList<>();
            Map<String, TensorView> permuted = null;
            if (tok != null && roles.isVocab(name)) {
                // rows laid out in the merged vocabulary (docs/config.md, "Tokenizers and vocabularies")
                Map<String, TensorView> srcs = new LinkedHashMap<>();
                if (base != null) srcs.put(cfg.baseModel(), b);
                for (int i = 0; i < models.size(); i++) srcs.putIfAbsent(refs.get(i), present(in, models.get(i), name));
                permuted = tok.permute(in.derived(), name, srcs);
                r = permuted.get(base != null ? cfg.baseModel() : refs.getFirst());
                if (base != null) b = permuted.get(cfg.baseModel());
            }
            for (int i = 0; i < models.size(); i++) {
                views.add(permuted != null ? permuted.get(refs.get(i)) : sameShape(in, roles, r, models.get(i), name));
                params.add(cfg.modelParams(i, name, t));
            }
            out.add(tensor(roles, cfg, spec, name, r, b, views, params, cfg.globalParams(name, t), baseIndex, layer, stats, refs));
        }
        return new Plan(cfg, out, ref, layers);
    }

    /** {@code slices:} configs: output layers are the concatenation of the slices' layer ranges. */
    static Plan planSlices(MergeConfig cfg, Inputs in, StatsLocator locator) {
        MethodSpec spec = cfg.method();
        List<Slice> slices = cfg.slices();
        Checkpoint first = in.get(slices.getFirst().sources().getFirst().model());
        Checkpoint ref = cfg.baseModel() != null ? in.get(cfg.baseModel()) : first;
        for (Slice s : slices) for (SliceSource src : s.sources()) in.get(src.model());
        checkArchitectures(ref, in.all(), in.crimes);
        if (spec.stats() != MethodSpec.Stats.NONE) {
            // slice sources have no calibration block of their own: the top-level one serves every source model
            for (Slice s : slices) for (SliceSource src : s.sources()) in.stats(spec.stats()).add(in.get(src.model()), cfg.calibration(), "calibration (top level)", locator);
        }
        int refLayers = numLayers(ref);
        TensorRoles roles = Architectures.roles(ref.config());
        List<PlannedTensor> pre = new ArrayList<>(), layerTensors = new ArrayList<>(), post = new ArrayList<>();
        int outLayer = 0;
        for (int si = 0; si < slices.size(); si++) {
            Slice s = slices.get(si);
            int len = s.sources().getFirst().layerEnd() - s.sources().getFirst().layerStart();
            for (SliceSource src : s.sources()) {
                if (src.layerEnd() - src.layerStart() != len) {
                    throw new ConfigException("slices[" + si + "]: every source needs the same number of layers (" + len
                            + " vs " + (src.layerEnd() - src.layerStart()) + " for " + src.model() + "); fix the layer_range values");
                }
                int have = numLayers(in.get(src.model()));
                if (src.layerStart() < 0 || src.layerEnd() > have) {
                    throw new ConfigException("slices[" + si + "]: layer_range [" + src.layerStart() + ", " + src.layerEnd() + "] of "
                            + src.model() + " is outside its " + have + " layers");
                }
            }
            for (int idx = 0; idx < len; idx++, outLayer++) {
                double t = len > 1 ? (double) idx / (len - 1) : 1.0;
                // each output layer takes its tensor set from its own source layer: stacks may differ per layer (dense, then MoE)
                for (String name : layerNames(in, roles, s, idx, si)) {
                    String outName = roles.withLayer(name, outLayer);
                    layerTensors.add(sliceTensor(roles, cfg, spec, in, si, s, idx, t, name, outName, outLayer));
                }
            }
        }
        for (String name : ref.names()) {
            if (roles.layerOf(name) >= refLayers) throw beyondStack(ref, name, roles.layerOf(name), refLayers);
            if (roles.layerOf(name) >= 0) continue;
            boolean isPre = roles.isPre(name);
            int si = isPre ? 0 : slices.size() - 1;
            double t = isPre ? 0.0 : cfg.postWeightsT();
            (isPre ? pre : post).add(sliceTensor(roles, cfg, spec, in, si, slices.get(si), -1, t, name, name, -1));
        }
        List<PlannedTensor> all = new ArrayList<>(pre);
        all.addAll(layerTensors);
        all.addAll(post);
        if (refLayers <= 0) throw new CheckpointException(ref.dir() + ": config.json has no layer count (num_hidden_layers); slices need one");
        return new Plan(cfg, all, ref, outLayer);
    }

    /**
     * The tensor names of the layer at {@code offset} of slice {@code s}, read from its first source
     * (in that source's layer numbering); every other source must hold the same set at its own layer.
     */
    private static List<String> layerNames(Inputs in, TensorRoles roles, Slice s, int offset, int si) {
        List<List<String>> sets = new ArrayList<>();
        for (SliceSource src : s.sources()) {
            int layer = src.layerStart() + offset;
            List<String> names = new ArrayList<>();
            for (String n : in.get(src.model()).names()) if (roles.layerOf(n) == layer) names.add(n);
            if (names.isEmpty()) {
                throw new CheckpointException(src.model() + " has no tensors for layer " + layer + " (slices[" + si
                        + "]); check the layer_range against the model's layers");
            }
            sets.add(names);
        }
        List<String> first = sets.getFirst();
        int firstLayer = s.sources().getFirst().layerStart() + offset;
        for (int j = 1; j < sets.size(); j++) {
            int layer = s.sources().get(j).layerStart() + offset;
            java.util.Set<String> want = new java.util.HashSet<>();
            for (String n : first) want.add(roles.withLayer(n, layer));
            for (String n : sets.get(j)) {
                if (!want.contains(n)) {
                    throw new CheckpointException("slices[" + si + "]: " + s.sources().get(j).model() + " has '" + n + "' but layer "
                            + firstLayer + " of " + s.sources().getFirst().model() + " has no such tensor; a slice must merge layers of one kind (e.g. dense with dense, MoE with MoE)");
                }
            }
        }
        return first;
    }

    private static PlannedTensor sliceTensor(TensorRoles roles, MergeConfig cfg, MethodSpec spec, Inputs in, int si, Slice s, int idx, double t,
                                             String templateName, String outName, int outLayer) {
        String baseRef = cfg.sliceBaseModel(si);
        Checkpoint base = baseRef == null ? null : in.get(baseRef);
        List<TensorView> views = new ArrayList<>();
        List<Params> params = new ArrayList<>();
        List<String> refs = new ArrayList<>();
        int baseIndex = -1;
        TensorView first = null;
        in.beginTensor();
        TokenizerPlan tok = idx < 0 && roles.isVocab(templateName) ? in.tokenizer(cfg) : null;
        Map<String, TensorView> permuted = null;
        if (tok != null) {
            // rows laid out in the merged vocabulary (docs/config.md, "Tokenizers and vocabularies")
            Map<String, TensorView> srcs = new LinkedHashMap<>();
            if (base != null) srcs.put(baseRef, present(in, base, templateName));
            for (SliceSource src : s.sources()) srcs.putIfAbsent(src.model(), present(in, in.get(src.model()), templateName));
            permuted = tok.permute(in.derived(), templateName, srcs);
        }
        for (int j = 0; j < s.sources().size(); j++) {
            SliceSource src = s.sources().get(j);
            Checkpoint c = in.get(src.model());
            String inName = idx < 0 ? templateName : roles.withLayer(templateName, src.layerStart() + idx);
            if (!c.contains(inName)) throw missing(c, inName);
            TensorView v = permuted != null ? permuted.get(src.model()) : in.tensor(c, inName);
            if (first == null) first = v;
            else if (!v.shape().equals(first.shape())) throw shapeMismatch(roles, inName, first, v);
            views.add(v);
            refs.add(src.model());
            params.add(cfg.sliceSourceParams(si, j, inName, t));
            if (src.model().equals(cfg.sliceBaseModel(si))) baseIndex = j;
        }
        TensorView b = null;
        if (base != null) {
            int baseLayerIdx = idx < 0 ? -1 : s.sources().stream().filter(x -> x.model().equals(baseRef))
                    .mapToInt(x -> x.layerStart() + idx).findFirst().orElse(s.sources().getFirst().layerStart() + idx);
            String bn = idx < 0 ? templateName : roles.withLayer(templateName, baseLayerIdx);
            if (!base.contains(bn)) throw missing(base, bn);
            b = permuted != null ? permuted.get(baseRef) : in.tensor(base, bn);
        }
        ModelStats stats = spec.stats() == MethodSpec.Stats.NONE ? null : in.stats(spec.stats());
        return tensor(roles, cfg, spec, outName, Objects.requireNonNull(first), b, views, params, cfg.sliceGlobalParams(si, outName, t), baseIndex,
                outLayer, stats, refs);
    }

    private static PlannedTensor tensor(TensorRoles roles, MergeConfig cfg, MethodSpec spec, String name, TensorView ref, TensorView base,
                                        List<TensorView> views, List<Params> params, Params global, int baseIndex, int layer,
                                        ModelStats stats, List<String> refs) {
        boolean copyOnly = !ref.dtype().isFloat();
        DType out = copyOnly ? ref.dtype() : (cfg.outDtype() != null ? cfg.outDtype() : cfg.dtype() != null ? cfg.dtype()
                : base != null ? base.dtype() : ref.dtype());
        if (out == DType.F64 && !copyOnly) out = DType.F32;
        if (base != null && !base.shape().equals(ref.shape())) throw shapeMismatch(roles, name, ref, base);
        if (stats == null || copyOnly) return new PlannedTensor(name, ref.shape(), out, base, views, params, global, baseIndex, layer, copyOnly);
        List<Params> withNorms = new ArrayList<>();
        for (int i = 0; i < params.size(); i++) withNorms.add(stats.withNorm(params.get(i), refs.get(i), global.flag("normalize", true)));
        boolean inOut = stats.kind() == MethodSpec.Stats.GRAM && roles.storedInOut(name);
        List<TensorView> statViews = stats.views(refs, views, inOut);
        if (stats.kind() == MethodSpec.Stats.GRAM && !statViews.isEmpty()) {
            // the solve's layout comes from the descriptor (GPT-2's Conv1D stores Wᵀ), never from the shape
            Map<String, Object> g = new LinkedHashMap<>(global.values());
            g.put(MethodSpec.STORED_IN_OUT_PARAM, inOut);
            global = new Params(g, global.where());
        }
        return new PlannedTensor(name, ref.shape(), out, base, views, withNorms, global, baseIndex, layer, false, statViews);
    }

    private static TensorView present(Inputs in, Checkpoint c, String name) {
        if (!c.contains(name)) throw missing(c, name);
        return in.tensor(c, name);
    }

    private static TensorView sameShape(Inputs in, TensorRoles roles, TensorView r, Checkpoint other, String name) {
        if (!other.contains(name)) throw missing(other, name);
        TensorView v = in.tensor(other, name);
        if (!v.shape().equals(r.shape())) throw shapeMismatch(roles, name, r, v);
        return v;
    }

    /** A layer tensor past config.json's layer count (e.g. DeepSeek-V3's multi-token-prediction layer): refused, never skipped or guessed. */
    static CheckpointException beyondStack(Checkpoint c, String name, int layer, int layers) {
        return new CheckpointException("tensor '" + name + "' of " + c.ref() + " is in layer " + layer + " but its config.json counts "
                + layers + " decoder layers; layers past the stack (e.g. multi-token-prediction layers, num_nextn_predict_layers) "
                + "are not supported yet: remove those tensors from a copy of the checkpoint, or fix the layer count");
    }

    static CheckpointException missing(Checkpoint c, String name) {
        return new CheckpointException("tensor '" + name + "' is missing from " + c.ref()
                + "; all merged models must have the same tensors (check that they share one architecture)");
    }

    static CheckpointException shapeMismatch(TensorRoles roles, String name, TensorView a, TensorView b) {
        // a vocabulary difference: an embedding or output head whose shapes differ in the rows only
        boolean vocab = (roles.isEmbedding(name) || roles.isHead(name)) && a.shape().rank() == b.shape().rank()
                && a.shape().rank() >= 1 && a.shape().dim(0) != b.shape().dim(0)
                && java.util.Arrays.equals(a.shape().dims(), 1, a.shape().rank(), b.shape().dims(), 1, b.shape().rank());
        return new CheckpointException("tensor '" + name + "' has shape " + a.shape() + " in " + a.source() + " but "
                + b.shape() + " in " + b.source() + (vocab
                ? "; the vocabularies differ (" + a.shape().dim(0) + " vs " + b.shape().dim(0)
                        + " tokens): set tokenizer_source (base, union or a model) to lay the rows out in one vocabulary, or merge models that share one tokenizer"
                : "; the models are not fine-tunes of one architecture and size"));
    }

    /** Refuses models of another architecture than ref's, or with {@code crimes} (--allow-crimes) reports each and goes on. */
    static void checkArchitectures(Checkpoint ref, List<Checkpoint> all, java.util.function.Consumer<String> crimes) {
        String a = architecture(ref);
        for (Checkpoint c : all) {
            String b = architecture(c);
            if (a != null && b != null && !a.equals(b)) {
                String what = "architectures differ: " + ref.ref() + " is " + a + " but " + c.ref() + " is " + b;
                if (crimes == null) {
                    throw new CheckpointException(what + "; only models of one architecture can be merged (pass --allow-crimes to merge them anyway)");
                }
                crimes.accept("warning: " + what + "; merging anyway (--allow-crimes): tensors must still match by name and shape");
            }
        }
    }

    static String architecture(Checkpoint c) {
        JsonNode cfg = c.config();
        JsonNode arch = cfg.path("architectures");
        if (arch.isArray() && !arch.isEmpty()) return arch.get(0).asText();
        JsonNode mt = cfg.get("model_type");
        return mt == null ? null : mt.asText();
    }

    /** Decoder layers from config.json (the key the family's descriptor names), else from the tensor names. */
    public static int numLayers(Checkpoint c) {
        TensorRoles roles = Architectures.roles(c.config());
        int n = roles.layerCount(c.config());
        if (n >= 0) return n;
        int max = -1;
        for (String name : c.names()) max = Math.max(max, roles.layerOf(name));
        return max + 1;
    }
}
