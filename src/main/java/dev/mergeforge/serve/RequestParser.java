package dev.mergeforge.serve;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.api.BackendChoice;
import dev.mergeforge.api.CalibrateRequest;
import dev.mergeforge.api.EvalRequest;
import dev.mergeforge.api.CandidateMode;
import dev.mergeforge.api.MergeEvalRequest;
import dev.mergeforge.api.MergeRequest;
import dev.mergeforge.errors.ConfigException;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * Turns one JSON line into a {@link Request}. Every mistake is a {@link BadRequest} with a one-line
 * message naming the key and the fix, and the request's id when it could be read. Unknown keys are
 * errors listing the valid ones (a typo must not silently fall back to a default).
 */
final class RequestParser {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final List<String> BACKEND_KEYS = List.of("backend", "device", "threads", "device_memory");
    private static final List<String> MERGE_KEYS = List.of("config", "config_yaml", "output", "seed", "out_shard_size", "overwrite", "allow_nonfinite",
            "allow_crimes", "max_memory");
    private static final List<String> CALIBRATE_KEYS = List.of("model", "output", "stat", "data", "samples", "seq_len", "seed", "device", "threads", "cache");
    private static final List<String> MERGE_EVAL_KEYS = List.of("config", "config_yaml", "seed", "backend", "threads", "text", "tasks",
            "max_tokens", "rows", "max_memory", "mode");
    private static final List<String> EVAL_KEYS = List.of("model", "text", "tasks", "max_tokens", "rows", "device", "threads");

    private RequestParser() {}

    /** A request that cannot be run; {@code id} is null when the line had none. */
    static final class BadRequest extends ConfigException {
        final String id;

        BadRequest(String id, String message) {
            super(message);
            this.id = id;
        }
    }

    static Request parse(String line) {
        JsonNode n;
        try {
            n = JSON.readTree(line);
        } catch (JsonProcessingException e) {
            throw new BadRequest(null, "request is not valid JSON (" + e.getOriginalMessage() + "); send one JSON object per line");
        }
        if (n == null || !n.isObject()) throw new BadRequest(null, "request must be a JSON object such as {\"id\": \"1\", \"op\": \"status\"}");
        JsonNode idNode = n.get("id");
        if (idNode == null || !(idNode.isTextual() || idNode.isIntegralNumber()) || idNode.asText().isEmpty()) {
            throw new BadRequest(null, "request needs \"id\": a non-empty string or integer that tags its responses");
        }
        String id = idNode.asText();
        String op = n.path("op").asText("");
        try {
            return switch (op) {
                case "merge" -> new Request.Merge(id, merge(n, id));
                case "plan" -> new Request.Plan(id, merge(n, id));
                case "calibrate" -> new Request.Calibrate(id, calibrate(n, id));
                case "eval" -> new Request.Eval(id, eval(n, id));
                case "merge_eval" -> new Request.MergeEval(id, mergeEval(n, id));
                case "cancel" -> {
                    keys(n, id, List.of("target"));
                    yield new Request.Cancel(id, text(n, id, "target", true));
                }
                case "status" -> {
                    keys(n, id, List.of("target"));
                    yield new Request.Status(id, text(n, id, "target", false));
                }
                default -> throw new BadRequest(id, "\"op\": " + (op.isEmpty() ? "missing" : "'" + op + "' is unknown")
                        + "; valid: merge, plan, calibrate, eval, merge_eval, cancel, status");
            };
        } catch (BadRequest e) {
            throw e;
        } catch (ConfigException e) {
            throw new BadRequest(id, e.getMessage());
        }
    }

    /** The config as a file path or as YAML text (a JSON object is YAML too). */
    private record Config(Path file, String yaml) {}

    private static Config config(JsonNode n, String id) {
        JsonNode cfg = n.get("config");
        Path file = null;
        String yaml = text(n, id, "config_yaml", false);
        if (cfg != null && cfg.isObject()) {
            if (yaml != null) throw new BadRequest(id, "give \"config\" or \"config_yaml\", not both");
            yaml = cfg.toString(); // JSON is YAML: a mergekit config given as an object
        } else if (cfg != null) {
            if (yaml != null) throw new BadRequest(id, "give \"config\" or \"config_yaml\", not both");
            file = Path.of(text(n, id, "config", true));
        }
        if (file == null && yaml == null) throw new BadRequest(id, "\"config\" is missing: give a config file path, a config object or \"config_yaml\" text");
        return new Config(file, yaml);
    }

    private static MergeRequest merge(JsonNode n, String id) {
        List<String> valid = new ArrayList<>(MERGE_KEYS);
        valid.addAll(BACKEND_KEYS);
        keys(n, id, valid);
        Config c = config(n, id);
        Path file = c.file();
        String yaml = c.yaml();
        return new MergeRequest(file, yaml, Path.of(text(n, id, "output", true)), integer(n, id, "seed", 0),
                integer(n, id, "out_shard_size", MergeRequest.DEFAULT_SHARD_BYTES), bool(n, id, "overwrite", false),
                bool(n, id, "allow_nonfinite", false), bool(n, id, "allow_crimes", false), backend(n, id),
                integer(n, id, "max_memory", 0));
    }

    private static BackendChoice backend(JsonNode n, String id) {
        return new BackendChoice(n.has("backend") ? text(n, id, "backend", true) : "auto", n.has("device") ? text(n, id, "device", true) : "cpu",
                int32(n, id, "threads", 0), integer(n, id, "device_memory", 0));
    }

    private static CalibrateRequest calibrate(JsonNode n, String id) {
        keys(n, id, CALIBRATE_KEYS);
        String data = text(n, id, "data", false);
        return new CalibrateRequest(text(n, id, "model", true), n.has("stat") ? text(n, id, "stat", true) : "act_mean",
                data == null ? null : Path.of(data), int32(n, id, "samples", 128), int32(n, id, "seq_len", 0),
                integer(n, id, "seed", 42), n.has("device") ? text(n, id, "device", true) : "cpu", int32(n, id, "threads", 0),
                bool(n, id, "cache", true), Path.of(text(n, id, "output", true)));
    }

    private static MergeEvalRequest mergeEval(JsonNode n, String id) {
        keys(n, id, MERGE_EVAL_KEYS);
        Config c = config(n, id);
        String text = text(n, id, "text", false);
        return new MergeEvalRequest(c.file(), c.yaml(), integer(n, id, "seed", 0),
                new BackendChoice(n.has("backend") ? text(n, id, "backend", true) : "auto", "cpu", int32(n, id, "threads", 0)),
                text == null ? null : Path.of(text), tasks(n, id), int32(n, id, "max_tokens", 128), int32(n, id, "rows", 100),
                integer(n, id, "max_memory", 0), mode(n, id));
    }

    private static CandidateMode mode(JsonNode n, String id) {
        String m = text(n, id, "mode", false);
        if (m == null) return CandidateMode.AUTO;
        for (CandidateMode c : CandidateMode.values()) if (c.key().equals(m)) return c;
        throw new BadRequest(id, "\"mode\" " + m + " is not a candidate mode; use auto, memory or layers");
    }

    private static List<Path> tasks(JsonNode n, String id) {
        List<Path> tasks = new ArrayList<>();
        JsonNode t = n.get("tasks");
        if (t != null) {
            if (!t.isArray()) throw new BadRequest(id, "\"tasks\" must be an array of JSONL file paths");
            for (JsonNode p : t) {
                if (!p.isTextual()) throw new BadRequest(id, "\"tasks\" must be an array of JSONL file paths, found " + p);
                tasks.add(Path.of(p.asText()));
            }
        }
        return tasks;
    }

    private static EvalRequest eval(JsonNode n, String id) {
        keys(n, id, EVAL_KEYS);
        List<Path> tasks = tasks(n, id);
        String text = text(n, id, "text", false);
        return new EvalRequest(text(n, id, "model", true), text == null ? null : Path.of(text), tasks,
                int32(n, id, "max_tokens", 128), int32(n, id, "rows", 100),
                n.has("device") ? text(n, id, "device", true) : "cpu", int32(n, id, "threads", 0));
    }

    private static void keys(JsonNode n, String id, List<String> valid) {
        Set<String> unknown = new TreeSet<>();
        for (Iterator<String> it = n.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!k.equals("id") && !k.equals("op") && !valid.contains(k)) unknown.add(k);
        }
        if (!unknown.isEmpty()) {
            throw new BadRequest(id, "unknown key" + (unknown.size() > 1 ? "s " : " ") + String.join(", ", unknown) + " for op "
                    + n.path("op").asText() + "; valid: " + String.join(", ", valid));
        }
    }

    private static String text(JsonNode n, String id, String key, boolean required) {
        JsonNode v = n.get(key);
        if (v == null || v.isNull()) {
            if (required) throw new BadRequest(id, "\"" + key + "\" is missing; it is required for op " + n.path("op").asText());
            return null;
        }
        if (!v.isTextual()) throw new BadRequest(id, "\"" + key + "\" must be a string, found " + v);
        return v.asText();
    }

    private static long integer(JsonNode n, String id, String key, long dflt) {
        JsonNode v = n.get(key);
        if (v == null || v.isNull()) return dflt;
        if (!v.isIntegralNumber() || !v.canConvertToLong()) throw new BadRequest(id, "\"" + key + "\" must be an integer, found " + v);
        return v.asLong();
    }

    private static int int32(JsonNode n, String id, String key, int dflt) {
        long v = integer(n, id, key, dflt);
        if (v != (int) v) throw new BadRequest(id, "\"" + key + "\" " + v + " is out of range");
        return (int) v;
    }

    private static boolean bool(JsonNode n, String id, String key, boolean dflt) {
        JsonNode v = n.get(key);
        if (v == null || v.isNull()) return dflt;
        if (!v.isBoolean()) throw new BadRequest(id, "\"" + key + "\" must be true or false, found " + v);
        return v.asBoolean();
    }
}
