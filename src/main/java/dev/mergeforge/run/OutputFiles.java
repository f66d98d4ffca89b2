package dev.mergeforge.run;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.config.MergeConfig;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.tensor.DType;
import dev.mergeforge.tokenizer.ChatTemplates;
import dev.mergeforge.tokenizer.TokenizerPlan;
import org.yaml.snakeyaml.DumperOptions;
import org.yaml.snakeyaml.Yaml;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/** The files beside the weights: config.json, tokenizer files, the resolved config and a model card. */
final class OutputFiles {
    static final List<String> TOKENIZER_FILES = List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
            "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja", "generation_config.json");

    private OutputFiles() {}

    static void write(Path dir, Planner.Plan plan, Planner.Inputs inputs, long seed, DType outDtype) throws IOException {
        MergeConfig cfg = plan.config();
        // config.json: the reference model's, with the output dtype and (for slices) the stack following the slices
        ObjectMapper json = new ObjectMapper();
        ObjectNode conf = outputConfig(plan, outDtype);
        TokenizerPlan tp = inputs.tokenizer(cfg);
        // the merged vocabulary's size, padded (mergekit writes it under the architecture's vocab key)
        if (tp != null) {
            conf.put("vocab_size", tp.rows());
            if (conf.get("text_config") instanceof ObjectNode text && text.has("vocab_size")) text.put("vocab_size", tp.rows());
        }
        Files.writeString(dir.resolve("config.json"), json.writerWithDefaultPrettyPrinter().writeValueAsString(conf));
        String chat = chatTemplate(cfg, inputs);
        if (tp != null) {
            tp.write(dir, chat);
            copy(tokenizerSource(cfg, plan, inputs).dir(), dir, "generation_config.json");
        } else {
            Checkpoint tok = tokenizerSource(cfg, plan, inputs);
            for (String f : TOKENIZER_FILES) copy(tok.dir(), dir, f);
            if (chat != null) TokenizerPlan.setChatTemplate(dir, chat);
        }
        Map<String, Object> resolved = new LinkedHashMap<>(cfg.raw());
        resolved.put("mergeforge", Map.of("seed", seed, "version", "0.1.0"));
        DumperOptions o = new DumperOptions();
        o.setDefaultFlowStyle(DumperOptions.FlowStyle.BLOCK);
        Files.writeString(dir.resolve("mergeforge_config.yml"), new Yaml(o).dump(resolved));
        Files.writeString(dir.resolve("README.md"), modelCard(cfg, new Yaml(o).dump(cfg.raw()), seed));
    }

    /** The output's config.json (also built while planning, so a stack config.json cannot describe is refused before any merging). */
    static ObjectNode outputConfig(Planner.Plan plan, DType outDtype) {
        return OutputConfig.rewrite(plan.reference().config(), OutputConfig.sourceLayers(plan.config(), plan.reference().ref()), outDtype);
    }

    private static void copy(Path from, Path to, String f) throws IOException {
        Path src = from.resolve(f);
        if (Files.isRegularFile(src)) Files.copy(src, to.resolve(f), StandardCopyOption.COPY_ATTRIBUTES);
    }

    /** The model whose tokenizer files (or, with a tokenizer source, whose tokenizer_config.json) the output starts from. */
    static Checkpoint tokenizerSource(MergeConfig cfg, Planner.Plan plan, Planner.Inputs inputs) {
        String src = cfg.tokenizerSource();
        if (src == null || src.equals("base") || src.equals("union")) return plan.reference();
        return inputs.get(src);
    }

    /** The chat template text to write, or null (docs/config.md, "Tokenizers and vocabularies"). */
    static String chatTemplate(MergeConfig cfg, Planner.Inputs inputs) {
        Object raw = cfg.raw().get("chat_template");
        if (raw == null) return null;
        List<Path> dirs = TokenizerPlan.referenced(cfg).stream().map(r -> inputs.get(r).dir()).toList();
        return ChatTemplates.resolve(String.valueOf(raw), dirs);
    }

    static String modelCard(MergeConfig cfg, String yaml, long seed) {
        String models = cfg.models().stream().map(m -> "- " + m.model()).collect(Collectors.joining("\n"));
        if (models.isEmpty()) {
            models = cfg.slices().stream().flatMap(s -> s.sources().stream())
                    .map(s -> "- " + s.model() + " (layers " + s.layerStart() + "-" + s.layerEnd() + ")").collect(Collectors.joining("\n"));
        }
        return "---\ntags:\n- merge\n- mergeforge\n---\n# Merged model\n\n"
                + "This model was merged with mergeforge using the **" + cfg.method().name() + "** method ("
                + cfg.method().paper() + ")" + (cfg.baseModel() != null ? " with `" + cfg.baseModel() + "` as the base" : "") + ".\n\n"
                + "## Models merged\n\n" + models + "\n\n"
                + (cfg.aim() != null ? "Activation-informed merging (AIM, arXiv 2502.02421) was applied with omega = " + cfg.aim().omega() + ".\n\n" : "")
                + "## Configuration\n\nRandom seed: " + seed + "\n\n```yaml\n" + yaml + "```\n";
    }
}
