package dev.mergeforge.bench;

import dev.mergeforge.backend.Parallel;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.tensor.DType;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A random Llama-style bf16 model family sized for a parameter budget, generated once into a
 * folder and reused while its shape matches (a marker file records the shape).
 */
public final class Family {
    private Family() {}

    /** Llama shapes for about {@code params} parameters: hidden and layers grow together, vocab 32000. */
    public static RandomModels.Builder shapeFor(long params, Parallel par) {
        int hidden = 512, layers = 4;
        while (true) {
            RandomModels.Builder b = builder(hidden, layers, par);
            if (b.parameters() >= params * 0.9 || hidden >= 8192) return b;
            if (layers < hidden / 64) layers += 2; else hidden += 256;
        }
    }

    private static RandomModels.Builder builder(int hidden, int layers, Parallel par) {
        int heads = hidden / 64;
        return RandomModels.builder().arch(Arch.LLAMA).hidden(hidden).intermediate(hidden * 8 / 3 / 64 * 64).layers(layers)
                .heads(heads).kvHeads(Math.max(1, heads / 4)).vocab(32000).maxPositions(4096).dtype(DType.BF16).seed(1234)
                .parallel(par);
    }

    /** The family in {@code root} (base + n fine-tunes), generated if missing or of another shape. */
    public static RandomModels.Family ensure(RandomModels.Builder b, int fineTunes, Path root, java.io.PrintWriter log) {
        String marker = b.spec() + " fine-tunes=" + fineTunes;
        Path mark = root.resolve("family.txt");
        List<Path> fts = new ArrayList<>();
        for (int j = 1; j <= fineTunes; j++) fts.add(root.resolve("ft" + j));
        try {
            if (Files.isRegularFile(mark) && Files.readString(mark).equals(marker)) {
                return new RandomModels.Family(root.resolve("base"), fts);
            }
            dev.mergeforge.io.OutputDir.deleteTree(root);
            Files.createDirectories(root);
            log.printf("generating a random Llama family: base + %d fine-tunes of %.0fM parameters (bf16) in %s%n",
                    fineTunes, b.parameters() / 1e6, root);
            log.flush();
            long t0 = System.nanoTime();
            RandomModels.Family f = RandomModels.family(b, fineTunes, 0.002, root);
            Files.writeString(mark, marker);
            log.printf("generated in %.1f s%n", (System.nanoTime() - t0) / 1e9);
            return f;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot prepare the benchmark models in " + root + ": " + e.getMessage(), e);
        }
    }

    /**
     * Reads every file of the given model folders once, so the timed merges find their inputs in
     * the page cache (the condition the benchmark's floor assumes). Returns the bytes read.
     */
    public static long warm(List<Path> dirs) {
        long total = 0;
        java.nio.ByteBuffer buf = java.nio.ByteBuffer.allocateDirect(16 << 20);
        for (Path d : dirs) {
            try (var files = Files.list(d)) {
                for (Path f : files.filter(Files::isRegularFile).toList()) {
                    try (var ch = java.nio.channels.FileChannel.open(f)) {
                        for (int n; (n = ch.read(buf.clear())) > 0; ) total += n;
                    }
                }
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + d + ": " + e.getMessage(), e);
            }
        }
        return total;
    }

    /** The safetensors files of the given model folders. */
    public static List<Path> weightFiles(List<Path> dirs) {
        List<Path> out = new java.util.ArrayList<>();
        for (Path d : dirs) {
            try (var files = Files.list(d)) {
                files.filter(p -> p.getFileName().toString().endsWith(".safetensors")).sorted().forEach(out::add);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot list " + d + ": " + e.getMessage(), e);
            }
        }
        return out;
    }

    /** Bytes of one model's weight files: the size of a merged output. */
    public static long weightBytes(Path dir) {
        long total = 0;
        for (Path p : weightFiles(List.of(dir))) {
            try {
                total += Files.size(p);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot stat " + p + ": " + e.getMessage(), e);
            }
        }
        return total;
    }
}
