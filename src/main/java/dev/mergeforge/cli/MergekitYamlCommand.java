package dev.mergeforge.cli;

import dev.mergeforge.backend.ffm.NativeBackend;
import dev.mergeforge.config.ConfigReader;
import dev.mergeforge.config.MergeConfig;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.errors.MergeforgeException;
import dev.mergeforge.run.JsonEvents;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/**
 * `mergeforge mergekit-yaml CONFIG OUT_PATH [mergekit flags]` (also installed as {@code bin/mergekit-yaml}):
 * mergekit 0.1.4's command line, every flag of its {@code MergeOptions} accepted. Each flag is
 * mapped to the `merge` option that does the same or, where nothing here corresponds, accepted with
 * one "note:" line on stderr saying why it changes nothing. The merge itself is `mergeforge merge`'s;
 * the output gets mergekit's layout (see docs/mergekit-compat.md and {@link MergekitOutput}).
 */
@Command(mixinStandardHelpOptions = true, name = "mergekit-yaml", sortOptions = false,
        description = "mergekit-yaml drop-in: merge CONFIG into OUT_PATH with mergekit 0.1.4's flags (see docs/mergekit-compat.md).")
final class MergekitYamlCommand implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "CONFIG_FILE", description = "mergekit YAML config.")
    Path config;

    @Parameters(index = "1", paramLabel = "OUT_PATH", description = "Output directory (an existing empty one or an earlier merge is replaced).")
    Path outPath;

    // ---- storage
    @Option(names = "--transformers-cache", paramLabel = "DIR", description = "Not applied: models are looked up in the Hugging Face cache (HF_HUB_CACHE / HF_HOME).")
    String transformersCache;
    @Option(names = "--lora-merge-cache", paramLabel = "DIR", description = "No effect: LoRA adapters are not merged here.")
    String loraMergeCache;
    @Option(names = "--lora-merge-dtype", paramLabel = "DTYPE", description = "No effect: LoRA adapters are not merged here.")
    String loraMergeDtype;

    // ---- output settings (the pairs: the last one given wins, as with mergekit's flags)
    @Option(names = "--out-shard-size", paramLabel = "SIZE", defaultValue = "5B", description = "Largest shard in bytes: N, Nk, Nm or Nb (mergekit's units; default 5B; 0 = one shard).")
    String outShardSize;
    Boolean copyTokenizer = true, cloneTensors = false, writeModelCard = true, safeSerialization = true;
    @Option(names = "--copy-tokenizer", description = "Copy the tokenizer files to the output (default).")
    void copyTokenizer(boolean b) { if (b) copyTokenizer = true; }
    @Option(names = "--no-copy-tokenizer", description = "Leave the tokenizer files out.")
    void noCopyTokenizer(boolean b) { if (b) copyTokenizer = false; }
    @Option(names = "--clone-tensors", description = "No effect: every output tensor is written from its own buffer.")
    void cloneTensors(boolean b) { if (b) cloneTensors = true; }
    @Option(names = "--no-clone-tensors", hidden = true) void noCloneTensors(boolean b) { if (b) cloneTensors = false; }
    @Option(names = "--write-model-card", description = "Write README.md and mergekit_config.yml (default).")
    void writeModelCard(boolean b) { if (b) writeModelCard = true; }
    @Option(names = "--no-write-model-card", description = "Write neither README.md nor mergekit_config.yml.")
    void noWriteModelCard(boolean b) { if (b) writeModelCard = false; }
    @Option(names = "--safe-serialization", description = "Write safetensors (the default and the only format here).")
    void safeSerialization(boolean b) { if (b) safeSerialization = true; }
    @Option(names = "--no-safe-serialization", description = "No effect: only safetensors are written.")
    void noSafeSerialization(boolean b) { if (b) safeSerialization = false; }

    // ---- performance
    Boolean cuda = false, lowCpuMemory = false, readToGpu = false, multiGpu = false, lazyUnpickle = false, asyncWrite = false;
    @Option(names = "--cuda", description = "Compute on the GPU (--backend cuda).") void cuda(boolean b) { if (b) cuda = true; }
    @Option(names = "--no-cuda", hidden = true) void noCuda(boolean b) { if (b) cuda = false; }
    @Option(names = "--device", paramLabel = "DEVICE", description = "cpu, cuda, cuda:N or auto.")
    String device;
    @Option(names = "--low-cpu-memory", description = "No effect: the merge streams tensor by tensor.") void lowCpuMemory(boolean b) { if (b) lowCpuMemory = true; }
    @Option(names = "--no-low-cpu-memory", hidden = true) void noLowCpuMemory(boolean b) { if (b) lowCpuMemory = false; }
    @Option(names = "--read-to-gpu", description = "No effect: the cuda backend copies each tensor up as it merges.") void readToGpu(boolean b) { if (b) readToGpu = true; }
    @Option(names = "--no-read-to-gpu", hidden = true) void noReadToGpu(boolean b) { if (b) readToGpu = false; }
    @Option(names = "--multi-gpu", description = "Not applied: one GPU is used (--device cuda:N picks it).") void multiGpu(boolean b) { if (b) multiGpu = true; }
    @Option(names = "--no-multi-gpu", hidden = true) void noMultiGpu(boolean b) { if (b) multiGpu = false; }
    @Option(names = {"--num-threads", "-j"}, paramLabel = "N", description = "Worker threads (--threads).")
    Integer numThreads;
    @Option(names = "--gpu-rich", description = "mergekit's alias for --cuda --low-cpu-memory --read-to-gpu --multi-gpu.")
    boolean gpuRich;
    @Option(names = "--lazy-unpickle", description = "No effect: pickles are never read; safetensors are memory-mapped.") void lazyUnpickle(boolean b) { if (b) lazyUnpickle = true; }
    @Option(names = "--no-lazy-unpickle", hidden = true) void noLazyUnpickle(boolean b) { if (b) lazyUnpickle = false; }
    @Option(names = "--async-write", description = "No effect: shards are always written by a background thread.") void asyncWrite(boolean b) { if (b) asyncWrite = true; }
    @Option(names = "--no-async-write", hidden = true) void noAsyncWrite(boolean b) { if (b) asyncWrite = false; }
    @Option(names = "--write-threads", paramLabel = "N", description = "No effect: one background writer per merge.")
    Integer writeThreads;

    // ---- dangerous options
    Boolean trustRemoteCode = false, allowCrimes = false;
    @Option(names = "--trust-remote-code", description = "No effect: no model code is ever run.") void trustRemoteCode(boolean b) { if (b) trustRemoteCode = true; }
    @Option(names = "--no-trust-remote-code", hidden = true) void noTrustRemoteCode(boolean b) { if (b) trustRemoteCode = false; }
    @Option(names = "--allow-crimes", description = "Allow mixing architectures (merge --allow-crimes).") void allowCrimes(boolean b) { if (b) allowCrimes = true; }
    @Option(names = "--no-allow-crimes", hidden = true) void noAllowCrimes(boolean b) { if (b) allowCrimes = false; }

    // ---- miscellaneous
    @Option(names = "--random-seed", paramLabel = "N", description = "Seed of the random methods (--seed; default 0).")
    Long randomSeed;
    @Option(names = "-v", description = "Verbose: -vv (or more) also prints stack traces with errors (--debug).")
    boolean[] verbosity = new boolean[0];
    Boolean quiet = false;
    @Option(names = "--quiet", description = "No progress output.") void quiet(boolean b) { if (b) quiet = true; }
    @Option(names = "--no-quiet", hidden = true) void noQuiet(boolean b) { if (b) quiet = false; }

    // ---- mergeforge's own
    @Option(names = "--events", paramLabel = "json", description = "mergeforge: JSON events on stdout (docs/events.md).")
    String events;
    @Option(names = "--debug", description = "mergeforge: print stack traces with errors.")
    boolean debug;

    @Override
    public Integer call() {
        PrintWriter err = spec.commandLine().getErr();
        if (events != null && !events.equals("json")) {
            throw new ConfigException("--events " + events + ": the only event format is json; pass --events json");
        }
        try {
            List<String> notes = new ArrayList<>();
            List<String> args = mergeArguments(notes);
            // notes are events like the merge's own: JSON on stdout with --events json, else lines on stderr
            JsonEvents json = events != null ? new JsonEvents(spec.commandLine().getOut()) : null;
            for (String n : notes) {
                if (json != null) json.note(n);
                else err.println("note: " + n);
            }
            err.flush();
            MergeConfig cfg = ConfigReader.read(config);
            CommandLine merge = spec.parent().commandLine().getSubcommands().get("merge");
            return MergekitOutput.run(merge, cfg, config, outPath, args, new MergekitOutput.Layout(copyTokenizer, writeModelCard));
        } catch (MergeforgeException e) {
            // failures before or after the merge itself: the error event a --events json caller waits for
            if (events != null) new JsonEvents(spec.commandLine().getOut()).error(e.getMessage(), e.exitCode());
            throw e;
        } catch (java.io.UncheckedIOException e) {
            if (events != null) new JsonEvents(spec.commandLine().getOut()).error(e.getMessage(), 1);
            throw e;
        }
    }

    /** The `merge` options equivalent to the flags given (without CONFIG and OUTPUT_DIR); notes for the ignored ones. */
    List<String> mergeArguments(List<String> notes) {
        List<String> a = new ArrayList<>();
        long shard = parseKmb(outShardSize);
        a.add("--out-shard-size");
        a.add(Long.toString(shard == 0 ? Long.MAX_VALUE : shard));   // 0: one shard, as mergekit's writer reads it
        if (randomSeed != null) a.addAll(List.of("--seed", randomSeed.toString()));
        if (gpuRich) {
            cuda = lowCpuMemory = readToGpu = multiGpu = true;
        }
        a.addAll(device(notes));
        if (numThreads != null) {
            if (numThreads < 1) throw new ConfigException("--num-threads " + numThreads + ": must be at least 1");
            a.addAll(List.of("--threads", numThreads.toString()));
        }
        if (quiet) a.add("-q");
        if (events != null) a.addAll(List.of("--events", events));
        if (debug || verbosity.length >= 2) a.add("--debug");
        if (allowCrimes) {
            CommandLine merge = spec.parent().commandLine().getSubcommands().get("merge");
            if (merge.getCommandSpec().findOption("--allow-crimes") != null) a.add("--allow-crimes");
            else notes.add("--allow-crimes: this build's merge has no --allow-crimes; models of different architectures are still refused");
        }
        if (transformersCache != null) {
            notes.add("--transformers-cache " + transformersCache + ": not applied; models are looked up in the Hugging Face cache"
                    + " (HF_HUB_CACHE, else HF_HOME/hub): set HF_HUB_CACHE=" + transformersCache + " to use that directory");
        }
        if (loraMergeCache != null) notes.add("--lora-merge-cache: no effect; mergeforge does not merge LoRA adapters");
        if (loraMergeDtype != null) notes.add("--lora-merge-dtype: no effect; mergeforge does not merge LoRA adapters");
        if (cloneTensors) notes.add("--clone-tensors: no effect; every output tensor is written from its own buffer");
        if (!safeSerialization) notes.add("--no-safe-serialization: no effect; mergeforge writes only safetensors, which transformers loads the same way");
        if (lowCpuMemory) notes.add("--low-cpu-memory: no effect; the merge streams tensor by tensor, so memory does not grow with the model");
        if (readToGpu) notes.add("--read-to-gpu: no effect; the cuda backend copies each tensor to the GPU as it merges");
        if (multiGpu) notes.add("--multi-gpu: not applied; one GPU is used (pick it with --device cuda:N)");
        if (lazyUnpickle) notes.add("--lazy-unpickle: no effect; mergeforge never reads pickles, safetensors are memory-mapped");
        if (asyncWrite) notes.add("--async-write: no effect; shards are always written by a background thread");
        if (writeThreads != null) notes.add("--write-threads: no effect; one background thread writes each merge's shards");
        if (trustRemoteCode) notes.add("--trust-remote-code: no effect; mergeforge reads config.json and safetensors and never runs model code");
        return a;
    }

    /** mergekit's --cuda / --device as our --backend / --device. */
    private List<String> device(List<String> notes) {
        String d = device != null && !device.isBlank() ? device.strip() : (cuda ? "cuda" : null);
        if (d == null || d.equals("auto")) return List.of();   // our auto: the fastest backend; all give the same bytes
        if (d.equals("cpu")) return List.of("--backend", NativeBackend.unavailableReason() == null ? "native" : "java");
        if (d.equals("cuda") || d.matches("cuda:\\d+")) return List.of("--device", d);
        throw new ConfigException("--device " + d + ": mergeforge computes on cpu, cuda or cuda:N (or auto); pass one of those");
    }

    /** mergekit's {@code parse_kmb}: a whole number, optionally with k, m or b (thousand, million, billion); 0 is no limit. */
    static long parseKmb(String s) {
        String t = s.strip();
        long mult = 1;
        if (!t.isEmpty()) {
            switch (Character.toLowerCase(t.charAt(t.length() - 1))) {
                case 'k' -> mult = 1_000L;
                case 'm' -> mult = 1_000_000L;
                case 'b' -> mult = 1_000_000_000L;
                default -> { }
            }
        }
        if (mult != 1) t = t.substring(0, t.length() - 1);
        try {
            if (!t.matches("\\d+")) throw new NumberFormatException();
            long v = Math.multiplyExact(Long.parseLong(t), mult);
            return v;
        } catch (NumberFormatException | ArithmeticException e) {
            throw new ConfigException("--out-shard-size " + s + ": expected a whole number of bytes, optionally with k, m or b"
                    + " (thousand, million, billion), such as 5B or 500M (0: one shard)");
        }
    }

    /** Whether OUT_PATH may be replaced: it is an empty directory or holds an earlier merge (a config.json). */
    static boolean replaceable(Path out) {
        if (!Files.isDirectory(out)) return false;
        try (var s = Files.list(out)) {
            List<Path> entries = s.toList();
            return entries.isEmpty() || Files.isRegularFile(out.resolve("config.json"));
        } catch (java.io.IOException e) {
            return false;
        }
    }
}
