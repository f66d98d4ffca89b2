package dev.mergeforge.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.tensor.TensorView;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A Hugging Face model directory opened for reading: {@code config.json} plus safetensors
 * weights, single-file or sharded (see {@link WeightFiles} for the rules and {@code docs/io.md}).
 * A reference is a local directory, or a hub id {@code org/name[@revision]} found in the local
 * Hugging Face cache ({@link HfCache}); the network is never used.
 *
 * <p>Lifetime: shards are memory-mapped on first use and stay mapped until {@link #close()};
 * every {@link TensorView} handed out is invalid after it. Safe for concurrent readers.
 */
public final class Checkpoint implements AutoCloseable {
    private final String ref;
    private final Path dir;
    private final WeightFiles weights;
    /** Tensor name to shard file, in the index's (or the single file's header) order. */
    private final Map<String, String> fileOf;
    private final Map<String, SafetensorsFile> shards = new ConcurrentHashMap<>();
    private volatile JsonNode config;
    private volatile boolean closed;

    private Checkpoint(String ref, Path dir) {
        this.ref = ref;
        this.dir = dir;
        if (LoraAdapter.isAdapter(dir) && !Files.isRegularFile(dir.resolve("config.json"))) {
            String base = "BASE";
            try {
                base = SafetensorsFile.JSON.readTree(Files.readString(dir.resolve("adapter_config.json"))).path("base_model_name_or_path").asText("BASE");
            } catch (IOException | RuntimeException e) {
                // the hint falls back to a placeholder
            }
            throw new CheckpointException("'" + ref + "' is a PEFT LoRA adapter (adapter_config.json), not a model; write it as "
                    + base + "+" + ref + " (mergekit's base+adapter syntax) with its base model's directory first");
        }
        this.weights = WeightFiles.locate(dir, ref);
        if (weights.index() != null) {
            this.fileOf = weights.fileOf();
        } else {
            String only = weights.files().getFirst();
            Map<String, String> m = new LinkedHashMap<>();
            for (String n : shard(only).names()) m.put(n, only);
            this.fileOf = Collections.unmodifiableMap(m);
        }
    }

    /** Opens a local model directory or a model in the default Hugging Face cache. */
    public static Checkpoint open(String ref) {
        return open(ref, HfCache.defaultRoot());
    }

    /** Opens a local model directory, or a hub id looked up in the cache rooted at {@code hfCacheRoot}. */
    public static Checkpoint open(String ref, Path hfCacheRoot) {
        if (ref == null || ref.isBlank()) {
            throw new CheckpointException("empty model reference; give a model directory or a Hugging Face id org/name");
        }
        String expanded = ref.startsWith("~/") ? System.getProperty("user.home") + ref.substring(1) : ref;
        Path local = Path.of(expanded);
        if (Files.isDirectory(local)) return new Checkpoint(ref, local.toAbsolutePath().normalize());
        if (Files.exists(local)) {
            throw new CheckpointException("model '" + ref + "' is a file, not a model directory; pass the directory that holds it"
                    + " and its config.json");
        }
        HfCache.HubId id = HfCache.parse(ref);
        if (id == null) {
            throw new CheckpointException("model '" + ref + "' not found: no directory " + local.toAbsolutePath()
                    + " and it is not a Hugging Face id like org/name[@revision]; pass a local model directory");
        }
        return new Checkpoint(ref, HfCache.resolve(id, hfCacheRoot, ref).toAbsolutePath().normalize());
    }

    /** Opens a local model directory (never the cache). */
    public static Checkpoint open(Path dir) {
        if (!Files.isDirectory(dir)) {
            throw new CheckpointException("model directory " + dir.toAbsolutePath() + " does not exist; check the path");
        }
        return new Checkpoint(dir.toString(), dir.toAbsolutePath().normalize());
    }

    /** The directory the files are read from (for a cached model, its snapshot directory). */
    public Path dir() { return dir; }

    /** The reference as given by the user. */
    public String ref() { return ref; }

    /** The weight files, absolute, in first-use order. */
    public List<Path> files() { return weights.files().stream().map(dir::resolve).toList(); }

    /** The parsed {@code config.json}; a {@link CheckpointException} if it is missing or not a JSON object. */
    public JsonNode config() {
        JsonNode c = config;
        if (c != null) return c;
        Path p = dir.resolve("config.json");
        if (!Files.isRegularFile(p)) {
            throw new CheckpointException("model '" + ref + "' has no config.json in " + dir
                    + "; download it with the weights (or copy the base model's)");
        }
        try {
            c = SafetensorsFile.JSON.readTree(Files.readString(p));
        } catch (JsonProcessingException e) {
            throw new CheckpointException(p + " is not valid JSON (" + SafetensorsFile.jsonError(e) + "); re-download or fix it", e);
        } catch (IOException e) {
            throw new CheckpointException("cannot read " + p + ": " + e.getMessage() + "; check its permissions", e);
        }
        if (c == null || !c.isObject()) throw new CheckpointException(p + " is not a JSON object; re-download or fix it");
        config = c;
        return c;
    }

    /** All tensor names: the index's order, or the single file's header order. */
    public List<String> names() { return List.copyOf(fileOf.keySet()); }

    public boolean contains(String name) { return fileOf.containsKey(name); }

    /** The named tensor, mapping its shard on first use; a {@link CheckpointException} naming model and tensor if absent. */
    public TensorView tensor(String name) {
        String file = fileOf.get(name);
        if (file == null) {
            throw new CheckpointException("model '" + ref + "' (" + dir + ") has no tensor '" + name + "' among its "
                    + fileOf.size() + " tensors; check the name against the model's architecture");
        }
        SafetensorsFile f = shard(file);
        if (!f.contains(name)) {
            throw new CheckpointException("model '" + ref + "': " + weights.index() + " puts tensor '" + name + "' in " + file
                    + " but that shard does not contain it; re-download " + file + " and the index");
        }
        return f.tensor(name);
    }

    /** Whether {@code v}'s bytes lie in one of this checkpoint's mapped shards. */
    public boolean holds(TensorView v) { return shardHolding(v) != null; }

    /**
     * Copies a tensor view handed out by this checkpoint into {@code dst} with positional reads
     * (see {@link SafetensorsFile#readInto}); returns false when the view is not from one of its
     * shards.
     */
    public boolean readInto(TensorView v, MemorySegment dst) {
        SafetensorsFile f = shardHolding(v);
        if (f == null) return false;
        f.readInto(v, dst);
        return true;
    }

    /**
     * Drops bytes [from, from + length) of a view handed out by this checkpoint from the page cache
     * ({@link SafetensorsFile#evict}); returns false when the view is not from one of its shards or
     * the cache could not be asked.
     */
    public boolean evict(TensorView v, long from, long length) {
        SafetensorsFile f = shardHolding(v);
        return f != null && f.evict(v, from, length);
    }

    /** {@link SafetensorsFile#adviseSequential} for every shard mapped so far. */
    public void adviseSequential() {
        for (SafetensorsFile f : shards.values()) f.adviseSequential();
    }

    private SafetensorsFile shardHolding(TensorView v) {
        for (SafetensorsFile f : shards.values()) if (f.holds(v)) return f;
        return null;
    }

    /** Sum of the byte sizes of all tensors (maps every shard to read its header). */
    public long totalBytes() {
        long sum = 0;
        for (String n : fileOf.keySet()) sum = Math.addExact(sum, tensor(n).data().byteSize());
        return sum;
    }

    /** Checks every tensor the index lists against its shard (maps every shard). */
    public void verify() {
        for (String n : fileOf.keySet()) tensor(n);
    }

    /**
     * The safetensors {@code __metadata__} of the (first) weight file; for a sharded model the
     * index's {@code metadata} entries (such as total_size) are added over it, as text.
     */
    public Map<String, String> metadata() {
        Map<String, String> m = new LinkedHashMap<>(shard(weights.files().getFirst()).metadata());
        m.putAll(weights.metadata());
        return Collections.unmodifiableMap(m);
    }

    private SafetensorsFile shard(String file) {
        SafetensorsFile f = shards.get(file);
        if (f != null) return f;
        synchronized (this) {
            if (closed) throw new IllegalStateException("checkpoint '" + ref + "' is closed");
            return shards.computeIfAbsent(file, k -> SafetensorsFile.open(dir.resolve(k)));
        }
    }

    /** Unmaps every shard; views handed out before are invalid afterwards. Idempotent. */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) return;
            closed = true;
        }
        RuntimeException first = null;
        for (SafetensorsFile f : new LinkedHashSet<>(shards.values())) {
            try {
                f.close();
            } catch (RuntimeException e) {
                if (first == null) first = e;
            }
        }
        shards.clear();
        if (first != null) throw first;
    }

    @Override public String toString() { return "Checkpoint[" + ref + " at " + dir + "]"; }
}
