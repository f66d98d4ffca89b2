package dev.mergeforge.cli;

import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.tensor.DType;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * `mergeforge fixture ROOT`: writes a tiny random Llama family (ROOT/base, ROOT/ft1..ftN, see
 * {@link RandomModels}) for tests that drive the launcher from outside the JVM (python/tests).
 */
@Command(name = "fixture", mixinStandardHelpOptions = true,
        description = "Write a tiny random Llama family (ROOT/base, ROOT/ft1..ftN) for tests and examples.")
final class FixtureCommand implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "ROOT", description = "Directory to create the family in (must not hold models yet).")
    Path root;

    @Option(names = "--fine-tunes", defaultValue = "2", description = "Number of fine-tunes (default 2).")
    int fineTunes;

    @Option(names = "--hidden", defaultValue = "64") int hidden;
    @Option(names = "--layers", defaultValue = "2") int layers;
    @Option(names = "--vocab", defaultValue = "128") int vocab;
    @Option(names = "--shards", defaultValue = "1") int shards;
    @Option(names = "--dtype", defaultValue = "bf16") String dtype;
    @Option(names = "--seed", defaultValue = "1") long seed;
    @Option(names = "--delta-std", defaultValue = "0.002") double deltaStd;

    @Override
    public Integer call() {
        DType d = DType.parseUserName(dtype);
        if (d == null) throw new ConfigException("--dtype " + dtype + ": expected float32, float16 or bfloat16");
        if (fineTunes < 1 || hidden < 8 || layers < 1 || vocab < 8 || shards < 1) {
            throw new ConfigException("fixture: --fine-tunes, --layers and --shards must be >= 1, --hidden and --vocab >= 8");
        }
        RandomModels.Family f;
        try {
            f = RandomModels.family(RandomModels.builder().hidden(hidden).layers(layers).vocab(vocab)
                    .shards(shards).dtype(d).seed(seed), fineTunes, deltaStd, root);
        } catch (IllegalArgumentException e) {
            throw new ConfigException("fixture: " + e.getMessage());
        }
        spec.commandLine().getOut().println(f.base());
        f.fineTunes().forEach(spec.commandLine().getOut()::println);
        spec.commandLine().getOut().flush();
        return 0;
    }
}
