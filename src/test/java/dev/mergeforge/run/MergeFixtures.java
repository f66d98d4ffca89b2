package dev.mergeforge.run;

import dev.mergeforge.cli.Main;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.tensor.TensorView;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tensor.Floats;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/** Helpers for end-to-end tests: tiny model families, running the CLI with captured output, reading tensors as doubles. */
public final class MergeFixtures {
    private MergeFixtures() {}

    /** A tiny family (base + n fine-tunes) of the given architecture under root. */
    public static RandomModels.Family family(Arch arch, DType dtype, int fineTunes, int shards, Path root) {
        RandomModels.Builder b = RandomModels.builder().arch(arch).hidden(32).intermediate(48).layers(3).heads(4).kvHeads(2)
                .vocab(64).maxPositions(64).dtype(dtype).shards(shards).seed(7);
        if (arch == Arch.GPT2) b.kvHeads(4);
        return RandomModels.family(b, fineTunes, 0.02, root);
    }

    /** What a CLI run printed and returned. */
    public record Run(int exit, String out, String err) {}

    public static Run cli(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        CommandLine cl = Main.commandLine();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int rc = cl.execute(args);
        return new Run(rc, out.toString(), err.toString());
    }

    /** A linear config (every model weight 1.0) named {@code name} in dir. */
    public static Path linear(Path dir, String name, Path... models) throws IOException {
        StringBuilder y = new StringBuilder("merge_method: linear\nmodels:\n");
        for (Path m : models) y.append("  - model: ").append(m).append("\n    parameters: {weight: 1.0}\n");
        return yaml(dir, name, y.toString());
    }

    public static Path yaml(Path dir, String name, String text) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, text);
        return p;
    }

    /** A stored tensor's values widened to double (exact for every float dtype). */
    public static double[] values(TensorView v) {
        int n = Math.toIntExact(v.numel());
        double[] d = new double[n];
        var s = v.data();
        for (int i = 0; i < n; i++) {
            d[i] = switch (v.dtype()) {
                case F32 -> s.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i);
                case BF16 -> Floats.bf16ToFloat(s.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i));
                case F16 -> Floats.f16ToFloat(s.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i));
                default -> throw new IllegalArgumentException(v.dtype().toString());
            };
        }
        return d;
    }

    public static double[] values(Path model, String tensor) {
        try (Checkpoint c = Checkpoint.open(model.toString())) {
            return values(c.tensor(tensor));
        }
    }
}
