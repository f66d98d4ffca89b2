package dev.mergeforge.cli;

import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.io.OutputDir;
import dev.mergeforge.lora.LoraExtractor;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** `mergeforge extract-lora`: a fine-tune minus its base as a PEFT LoRA adapter, with mergekit-extract-lora's options (docs/io.md). */
@Command(mixinStandardHelpOptions = true, name = "extract-lora",
        description = "Extract a PEFT LoRA adapter (fine-tune minus base, truncated SVD) with mergekit-extract-lora's options.")
final class ExtractLoraCommand implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--model", required = true, description = "Fine-tuned model directory.")
    String model;

    @Option(names = "--base-model", required = true, description = "Base model directory.")
    String baseModel;

    @Option(names = "--out-path", required = true, description = "Directory to write the adapter to (must not exist unless --overwrite).")
    Path outPath;

    @Option(names = "--max-rank", defaultValue = "128", description = "Maximum rank of each module's decomposition (default 128).")
    int maxRank;

    @Option(names = "--distribute-scale", negatable = true, defaultValue = "true", fallbackValue = "true",
            description = "A = sqrt(S)·Vt and B = U·sqrt(S) (default); --no-distribute-scale: A = S·Vt, B = U.")
    boolean distributeScale;

    @Option(names = "--embed-lora", negatable = true, defaultValue = "false", fallbackValue = "true",
            description = "Decompose embeddings too (default: save them whole in modules_to_save).")
    boolean embedLora;

    @Option(names = "--save-module", description = "Save this module (full name or last name part) at full rank; repeatable.")
    List<String> saveModules = new ArrayList<>();

    @Option(names = {"-e", "--exclude-regex"}, description = "Leave out modules whose name matches (anywhere); repeatable.")
    List<String> exclude = new ArrayList<>();

    @Option(names = {"-i", "--include-regex"}, description = "Only decompose modules whose name matches (anywhere); repeatable.")
    List<String> include = new ArrayList<>();

    @Option(names = "--sv-epsilon", defaultValue = "0", description = "Drop singular values at or below this (default 0).")
    double svEpsilon;

    @Option(names = "--skip-undecomposable", description = "Leave out modules that cannot be decomposed (norms, Conv1D) instead of saving them whole.")
    boolean skipUndecomposable;

    @Option(names = "--overwrite", description = "Replace --out-path if it exists.")
    boolean overwrite;

    @Override
    public Integer call() throws Exception {
        for (String r : List.of(model, baseModel)) {
            if (r.contains("+")) throw new ConfigException("'" + r + "': extract-lora reads full checkpoints; merge the LoRA reference first (mergeforge merge) and give that directory");
        }
        LoraExtractor.Options o = new LoraExtractor.Options(maxRank, distributeScale, embedLora, saveModules, exclude, include, svEpsilon, skipUndecomposable);
        try (Checkpoint base = Checkpoint.open(baseModel); Checkpoint ft = Checkpoint.open(model)) {
            try (OutputDir out = OutputDir.create(outPath, overwrite, List.of(base.dir(), ft.dir()), 0)) {
                LoraExtractor.Summary s = LoraExtractor.extract(base, ft, baseModel, o, out.temp());
                Files.writeString(out.temp().resolve("README.md"), "---\nlibrary_name: peft\nbase_model: " + baseModel + "\ntags:\n- mergeforge\n---\n"
                        + "# LoRA adapter\n\nExtracted with `mergeforge extract-lora` from `" + model + "` against `" + baseModel + "`: "
                        + s.ranks().size() + " modules decomposed (rank up to " + s.ranks().values().stream().mapToInt(Integer::intValue).max().orElse(0)
                        + "), modules saved whole: " + (s.modulesToSave().isEmpty() ? "none" : String.join(", ", s.modulesToSave())) + ".\n");
                out.commit();
                spec.commandLine().getOut().println("extracted " + s.ranks().size() + " LoRA modules into " + out.target());
            }
        }
        return 0;
    }
}
