package dev.mergeforge.lora;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.arch.Architectures;
import dev.mergeforge.arch.TensorRoles;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.io.Elements;
import dev.mergeforge.io.SafetensorsWriter;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.linalg.TruncatedSvd;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Shape;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.logging.Logger;
import java.util.regex.Pattern;

/**
 * A fine-tune minus its base as a PEFT LoRA adapter, with mergekit-extract-lora 0.1.4's choices
 * (docs/io.md, "Extracting a LoRA"): every 2-D weight's delta by truncated SVD (rank ≤ maxRank,
 * singular values ≤ svEpsilon dropped), A = √S·Vᵀ and B = U·√S (or A = S·Vᵀ, B = U); embeddings
 * saved whole unless embedLora; modules that cannot be decomposed (norms, GPT-2's Conv1D) saved
 * whole unless skipUndecomposable. α = r per module, so each product is added at scale 1.
 */
public final class LoraExtractor {
    private static final Logger LOG = Logger.getLogger(LoraExtractor.class.getName());
    private static final ObjectMapper JSON = new ObjectMapper();

    /** mergekit-extract-lora's options. */
    public record Options(int maxRank, boolean distributeScale, boolean embedLora, List<String> saveModules,
                          List<String> exclude, List<String> include, double svEpsilon, boolean skipUndecomposable) {
        public Options {
            if (maxRank < 1) throw new ConfigException("--max-rank must be at least 1, got " + maxRank);
            if (!(svEpsilon >= 0)) throw new ConfigException("--sv-epsilon must be non-negative, got " + svEpsilon);
            saveModules = List.copyOf(saveModules);
            exclude = List.copyOf(exclude);
            include = List.copyOf(include);
            for (String r : exclude) compile(r, "--exclude-regex");
            for (String r : include) compile(r, "--include-regex");
        }

        private static Pattern compile(String r, String opt) {
            try {
                return Pattern.compile(r);
            } catch (java.util.regex.PatternSyntaxException e) {
                throw new ConfigException(opt + " '" + r + "' is not a valid regular expression: " + e.getDescription());
            }
        }
    }

    /** What was written: module ranks and the modules saved whole. */
    public record Summary(Map<String, Integer> ranks, List<String> modulesToSave) {}

    private record Part(String name, DType dtype, Shape shape, long offset) {}

    private LoraExtractor() {}

    /** Writes adapter_model.safetensors and adapter_config.json into {@code out} (an empty directory). */
    public static Summary extract(Checkpoint base, Checkpoint ft, String baseRef, Options o, Path out) throws IOException {
        TensorRoles roles = Architectures.roles(ft.config());
        List<String> toSave = new ArrayList<>(o.saveModules());
        Map<String, Integer> ranks = new LinkedHashMap<>();
        List<Part> parts = new ArrayList<>();
        Set<String> warned = new java.util.HashSet<>();
        Path scratch = out.resolve(".parts");
        try (FileChannel ch = FileChannel.open(scratch, StandardOpenOption.CREATE_NEW, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            long[] at = {0};
            Set<String> biasesDone = new java.util.HashSet<>();
            for (String name : ft.names()) {
                if (!name.endsWith(".weight")) continue;
                String module = name.substring(0, name.length() - 7), key = module.substring(module.lastIndexOf('.') + 1);
                TensorView w = ft.tensor(name);
                String biasName = module + ".bias";
                TensorView bias = ft.contains(biasName) ? ft.tensor(biasName) : null;
                if (bias != null) biasesDone.add(biasName);
                boolean embedding = roles.isVocab(name) || roles.isEmbedding(name);
                boolean conv1d = roles.storedInOut(name);
                boolean vocabDiffers = embedding && base.contains(name) && !base.tensor(name).shape().equals(w.shape());
                if ((!o.embedLora() || vocabDiffers) && embedding && !matches(o.exclude(), module) && !toSave.contains(key)) {
                    LOG.warning("adding " + key + " to modules_to_save" + (vocabDiffers ? " (its rows differ from the base's)" : ""));
                    toSave.add(key);
                }
                if (toSave.contains(module) || toSave.contains(key)) {
                    parts.add(copy(ch, at, "base_model.model." + name, w));
                    if (bias != null) parts.add(copy(ch, at, "base_model.model." + biasName, bias));
                } else if (!shouldExtract(o, module)) {
                    continue;
                } else if (w.shape().rank() == 2 && !(conv1d && !embedding)) {
                    requireSame(base, ft, name, w);
                    boolean transpose = embedding && !roles.isHead(name);
                    int r = decompose(ch, at, parts, base.tensor(name), w, transpose, module, o);
                    ranks.put(module, r);
                    if (bias != null) {
                        requireSame(base, ft, biasName, bias);
                        parts.add(difference(ch, at, "base_model.model." + module + ".lora_B.bias", base.tensor(biasName), bias));
                    }
                } else {
                    if (warned.add(key)) LOG.warning(key + " (" + w.shape() + (conv1d ? ", Conv1D" : "") + ") cannot be decomposed: "
                            + (o.skipUndecomposable() ? "skipped" : "saved at full rank"));
                    if (o.skipUndecomposable()) continue;
                    if (!toSave.contains(key)) toSave.add(key);
                    parts.add(copy(ch, at, "base_model.model." + name, w));
                    if (bias != null) parts.add(copy(ch, at, "base_model.model." + biasName, bias));
                }
            }
            for (String n : ft.names()) {
                if (!n.endsWith(".weight") && !biasesDone.contains(n)) LOG.warning("tensor '" + n + "' is not a module weight or bias: not in the adapter");
            }
            if (ranks.isEmpty()) throw new ConfigException("no weight was decomposed (all excluded, saved or undecomposable); check --include-regex / --exclude-regex / --save-module");
            writeSafetensors(ch, parts, out.resolve("adapter_model.safetensors"));
        } finally {
            Files.deleteIfExists(scratch);
        }
        writeConfig(out, baseRef, ranks, toSave);
        return new Summary(ranks, toSave);
    }

    private static boolean shouldExtract(Options o, String module) {
        if (!o.include().isEmpty() && !matches(o.include(), module)) return false;
        return !matches(o.exclude(), module);
    }

    /** Python's re.search: a match anywhere in the name. */
    private static boolean matches(List<String> regexes, String name) {
        for (String r : regexes) if (Pattern.compile(r).matcher(name).find()) return true;
        return false;
    }

    private static void requireSame(Checkpoint base, Checkpoint ft, String name, TensorView w) {
        if (!base.contains(name)) throw new CheckpointException("tensor '" + name + "' of " + ft.ref() + " is missing from base model " + base.ref() + "; extract from the model it was fine-tuned from");
        TensorView b = base.tensor(name);
        if (!b.shape().equals(w.shape())) {
            throw new CheckpointException("tensor '" + name + "' has shape " + w.shape() + " in " + ft.ref() + " but " + b.shape() + " in base model " + base.ref()
                    + "; extract from the model it was fine-tuned from");
        }
        if (!b.dtype().isFloat() || !w.dtype().isFloat()) throw new CheckpointException("tensor '" + name + "' is not a float tensor; it cannot be decomposed");
    }

    /** Δ = ft − base (transposed for embeddings) → A [r, in], B [out, r] in the fine-tune's dtype. */
    private static int decompose(FileChannel ch, long[] at, List<Part> parts, TensorView base, TensorView ft, boolean transpose, String module, Options o)
            throws IOException {
        int rows = (int) ft.shape().dim(0), cols = (int) ft.shape().dim(1);
        TruncatedSvd.Rows delta = transpose ? new TruncatedSvd.Rows() {
            // Δᵀ: row i is column i of ft − base
            @Override public int rows() { return cols; }

            @Override public int cols() { return rows; }

            @Override public void row(int i, double[] dst) {
                for (int j = 0; j < rows; j++) dst[j] = Elements.get(ft.data(), ft.dtype(), (long) j * cols + i) - Elements.get(base.data(), base.dtype(), (long) j * cols + i);
            }
        } : new TruncatedSvd.Rows() {
            @Override public int rows() { return rows; }

            @Override public int cols() { return cols; }

            @Override public void row(int i, double[] dst) {
                long r0 = (long) i * cols;
                for (int j = 0; j < cols; j++) dst[j] = Elements.get(ft.data(), ft.dtype(), r0 + j) - Elements.get(base.data(), base.dtype(), r0 + j);
            }
        };
        int m = delta.rows(), n = delta.cols();
        TruncatedSvd.Result svd = TruncatedSvd.compute(delta, Math.min(o.maxRank(), Math.min(m, n)), module.hashCode());
        int rank = Math.min(o.maxRank(), Math.min(m, n));
        if (o.svEpsilon() > 0) {
            int above = 0;
            for (double s : svd.s()) if (s > o.svEpsilon()) above++;
            rank = Math.min(rank, above);
        }
        rank = Math.max(rank, 1); // a zero delta still needs a (zero) rank-1 pair for PEFT to load
        DType dt = ft.dtype() == DType.F64 ? DType.F32 : ft.dtype();
        String kind = transpose ? "lora_embedding" : "lora", suffix = transpose ? "" : ".weight";
        // A = √S·Vᵀ (or S·Vᵀ) [rank × n]; B = U·√S (or U) [m × rank]
        MemorySegment a = Arena.ofAuto().allocate((long) rank * n * dt.byteSize());
        for (int i = 0; i < rank; i++) {
            double sa = o.distributeScale() ? Math.sqrt(svd.s()[i]) : svd.s()[i];
            for (int j = 0; j < n; j++) Elements.put(a, dt, (long) i * n + j, sa * svd.vt()[i * n + j]);
        }
        MemorySegment b = Arena.ofAuto().allocate((long) m * rank * dt.byteSize());
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < rank; j++) {
                double sb = o.distributeScale() ? Math.sqrt(svd.s()[j]) : 1;
                Elements.put(b, dt, (long) i * rank + j, svd.u()[i * svd.k() + j] * sb);
            }
        }
        parts.add(append(ch, at, "base_model.model." + module + "." + kind + "_A" + suffix, dt, Shape.of(rank, n), a));
        parts.add(append(ch, at, "base_model.model." + module + "." + kind + "_B" + suffix, dt, Shape.of(m, rank), b));
        return rank;
    }

    private static Part difference(FileChannel ch, long[] at, String name, TensorView base, TensorView ft) throws IOException {
        DType dt = ft.dtype() == DType.F64 ? DType.F32 : ft.dtype();
        MemorySegment d = Arena.ofAuto().allocate(ft.numel() * dt.byteSize());
        for (long i = 0; i < ft.numel(); i++) Elements.put(d, dt, i, Elements.get(ft.data(), ft.dtype(), i) - Elements.get(base.data(), base.dtype(), i));
        return append(ch, at, name, dt, ft.shape(), d);
    }

    private static Part copy(FileChannel ch, long[] at, String name, TensorView v) throws IOException {
        return append(ch, at, name, v.dtype(), v.shape(), v.data());
    }

    /** Appends bytes to the scratch file (whole tensors are copied in 64 MiB pieces, never held). */
    private static Part append(FileChannel ch, long[] at, String name, DType dt, Shape shape, MemorySegment bytes) throws IOException {
        long off = at[0];
        for (long done = 0; done < bytes.byteSize(); ) {
            long len = Math.min(64L << 20, bytes.byteSize() - done);
            java.nio.ByteBuffer bb = bytes.asSlice(done, len).asByteBuffer();
            while (bb.hasRemaining()) ch.write(bb, off + done + bb.position());
            done += len;
        }
        at[0] += bytes.byteSize();
        return new Part(name, dt, shape, off);
    }

    private static void writeSafetensors(FileChannel ch, List<Part> parts, Path file) throws IOException {
        List<SafetensorsWriter.Entry> es = new ArrayList<>();
        for (Part p : parts) es.add(new SafetensorsWriter.Entry(p.name(), p.dtype(), p.shape()));
        try (SafetensorsWriter w = new SafetensorsWriter(file, es, Map.of("format", "pt")); Arena arena = Arena.ofConfined()) {
            long size = ch.size();
            MemorySegment all = size == 0 ? MemorySegment.NULL : ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            for (int i = 0; i < parts.size(); i++) {
                Part p = parts.get(i);
                w.write(p.name(), all.asSlice(p.offset(), es.get(i).byteSize()));
            }
        } catch (UncheckedIOException e) {
            throw e.getCause();
        }
    }

    /** adapter_config.json as mergekit writes it: r = the largest rank, α = r, per-module rank and α where they differ. */
    private static void writeConfig(Path out, String baseRef, Map<String, Integer> ranks, List<String> toSave) throws IOException {
        int r = ranks.values().stream().mapToInt(Integer::intValue).max().orElseThrow();
        ObjectNode c = JSON.createObjectNode();
        c.put("base_model_name_or_path", baseRef);
        c.put("peft_type", "LORA");
        c.put("use_rslora", false);
        ArrayNode t = c.putArray("target_modules");
        new TreeSet<>(ranks.keySet().stream().map(m -> m.substring(m.lastIndexOf('.') + 1)).toList()).forEach(t::add);
        ArrayNode s = c.putArray("modules_to_save");
        new LinkedHashSet<>(toSave).forEach(s::add);
        c.put("task_type", "CAUSAL_LM");
        c.put("r", r);
        c.put("lora_alpha", r);
        ObjectNode rp = c.putObject("rank_pattern"), ap = c.putObject("alpha_pattern");
        for (var e : ranks.entrySet()) {
            if (e.getValue() != r) {
                rp.put(e.getKey(), e.getValue());
                ap.put(e.getKey(), e.getValue());
            }
        }
        c.put("lora_dropout", 0.0);
        c.put("fan_in_fan_out", false);
        c.put("inference_mode", true);
        Files.writeString(out.resolve("adapter_config.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(c));
    }
}
