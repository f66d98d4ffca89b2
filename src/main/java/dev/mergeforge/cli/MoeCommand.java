package dev.mergeforge.cli;

import dev.mergeforge.config.MoeConfig;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.moe.MoeBuilder;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** `mergeforge moe CONFIG OUTPUT_DIR`: a mixture of experts from dense models, as mergekit-moe builds it (docs/moe.md). */
@Command(mixinStandardHelpOptions = true, name = "moe",
        description = "Build a Mixtral- or Qwen3-MoE-layout mixture from a dense base model and expert models (mergekit-moe config).")
final class MoeCommand implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "CONFIG", description = "mergekit-moe YAML: base_model, experts (source_model, positive_prompts, negative_prompts), gate_mode, experts_per_token, dtype.")
    Path config;

    @Parameters(index = "1", paramLabel = "OUTPUT_DIR", description = "Folder to write (appears only when complete).")
    Path output;

    @Option(names = "--overwrite", description = "Replace OUTPUT_DIR if it exists.")
    boolean overwrite;

    @Option(names = "--threads", defaultValue = "0", description = "Worker threads for the prompts' forward passes (0 = one per core).")
    int threads;

    @Option(names = "--seed", defaultValue = "42", description = "Seed of gate_mode: random.")
    long seed;

    @Option(names = "--debug", description = "Print stack traces with errors.")
    boolean debug;

    @Override
    public Integer call() {
        if (!Files.isRegularFile(config)) throw new ConfigException("mergeforge moe: config " + config + " not found; check the path");
        if (threads < 0) throw new ConfigException("--threads must be >= 0, got " + threads);
        MoeConfig cfg = MoeConfig.read(config);
        MoeBuilder.build(cfg, config.toString(), output, overwrite, threads, seed);
        spec.commandLine().getOut().println("wrote " + output + " (" + cfg.experts().size() + " experts, gate_mode " + cfg.gateMode() + ")");
        return 0;
    }
}
