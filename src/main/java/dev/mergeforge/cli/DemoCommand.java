package dev.mergeforge.cli;

import dev.mergeforge.backends.Backends;
import dev.mergeforge.backend.Parallel;
import dev.mergeforge.bench.CopyBandwidth;
import dev.mergeforge.bench.IoFloor;
import dev.mergeforge.bench.EndToEnd;
import dev.mergeforge.bench.Family;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.merge.MethodRegistry;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * `mergeforge demo`: the main job on an embedded default. Generates a random Llama family (base +
 * 3 fine-tunes, ~100M parameters each), merges it with several methods on every available backend
 * and prints a markdown table of time, throughput and peak memory.
 */
@Command(mixinStandardHelpOptions = true, name = "demo", description = "Generate a random model family and merge it with several methods, printing a table of time, throughput and memory.")
final class DemoCommand implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--dir", defaultValue = "target/demo", description = "Where the generated models and outputs go (default target/demo).")
    Path dir;

    @Option(names = "--params", defaultValue = "100000000", description = "Approximate parameters per model (default 100M).")
    long params;

    @Option(names = "--fine-tunes", defaultValue = "3", description = "Fine-tunes of the base (default 3).")
    int fineTunes;

    @Option(names = "--backends", split = ",", description = "Backends to compare (default: every available one).")
    List<String> backends;

    @Option(names = "--debug", description = "Print stack traces with errors.")
    boolean debug;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        Parallel par = new Parallel(0);
        try {
            RandomModels.Family f = Family.ensure(Family.shapeFor(params, par), fineTunes, dir.resolve("models"), err);
            Map<String, String> configs = EndToEnd.configs(f.base(), f.fineTunes());
            configs.keySet().removeIf(m -> MethodRegistry.all().stream().noneMatch(s -> s.name().equals(m)));
            List<String> bes = backends != null ? backends : available();
            List<Path> dirs = new java.util.ArrayList<>(f.fineTunes());
            dirs.add(f.base());
            Family.warm(dirs); // inputs in the page cache, as the floors assume
            IoFloor io = IoFloor.measure(Family.weightFiles(dirs), Family.weightBytes(f.base()), dir);
            List<EndToEnd.Row> rows = EndToEnd.run(configs, bes, dir.resolve("runs"), 0, err);
            double bw = CopyBandwidth.measure(256L << 20);
            out.println();
            out.printf("## mergeforge demo: %d models of %.0fM parameters (bf16)%n%n", f.fineTunes().size() + 1, params / 1e6);
            out.print(EndToEnd.table(rows, bw, io));
            out.flush();
            return 0;
        } finally {
            par.shutdown();
        }
    }

    static List<String> available() {
        List<String> names = new ArrayList<>();
        for (Backends.Kind k : Backends.kinds()) if (k.unavailableReason().get().isEmpty()) names.add(k.name());
        return names;
    }
}
