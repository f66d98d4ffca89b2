package dev.mergeforge.config;

import dev.mergeforge.errors.ConfigException;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.constructor.SafeConstructor;
import org.yaml.snakeyaml.error.Mark;
import org.yaml.snakeyaml.error.MarkedYAMLException;
import org.yaml.snakeyaml.error.YAMLException;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Loads YAML text into plain maps, lists and scalars with SnakeYAML's safe constructor (YAML 1.1
 * like PyYAML: yes/no/on/off are booleans). A syntax error becomes one line naming
 * {@code source:line:column}. Duplicate keys are refused (PyYAML keeps the last one silently).
 */
final class YamlSource {
    private YamlSource() {}

    static Map<String, Object> load(String text, String source) {
        LoaderOptions opts = new LoaderOptions();
        opts.setAllowDuplicateKeys(false);
        opts.setMaxAliasesForCollections(100);
        opts.setCodePointLimit(8 * 1024 * 1024);
        Object doc;
        try {
            doc = new Yaml(new SafeConstructor(opts)).load(text);
        } catch (MarkedYAMLException e) {
            Mark m = e.getProblemMark() != null ? e.getProblemMark() : e.getContextMark();
            String where = m == null ? source : source + ":" + (m.getLine() + 1) + ":" + (m.getColumn() + 1);
            String what = e.getProblem() != null ? e.getProblem() : e.getMessage();
            String ctx = e.getContext() != null ? " (" + oneLine(e.getContext()) + ")" : "";
            throw new ConfigException(where + ": YAML syntax error: " + oneLine(what) + ctx
                    + "; fix the YAML at that line and column (indent with spaces, quote values with ':' or '#')");
        } catch (YAMLException e) {
            throw new ConfigException(source + ": YAML error: " + oneLine(e.getMessage()) + "; fix the YAML");
        }
        if (doc == null) throw new ConfigException(source + ": the config is empty; write a mergekit config with merge_method: and models: or slices:");
        if (!(doc instanceof Map<?, ?> m)) {
            throw new ConfigException(source + ": the config must be a mapping of keys (merge_method:, models:, ...), got a " + kind(doc));
        }
        Map<String, Object> out = new LinkedHashMap<>();
        for (var e : m.entrySet()) out.put(String.valueOf(e.getKey()), e.getValue());
        return out;
    }

    static String kind(Object v) {
        if (v instanceof Map) return "mapping";
        if (v instanceof java.util.List) return "list";
        return "scalar '" + v + "'";
    }

    private static String oneLine(String s) { return s.replaceAll("\\s*\\R\\s*", " ").strip(); }
}
