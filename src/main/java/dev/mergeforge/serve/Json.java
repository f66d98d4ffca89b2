package dev.mergeforge.serve;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.api.CalibrateResult;
import dev.mergeforge.api.EvalResult;
import dev.mergeforge.api.MergeEvalResult;
import dev.mergeforge.api.MergeResult;
import dev.mergeforge.api.PlanResult;

/** The JSON form of the API's results (docs/protocol.md); {@code eval}'s is also what `mergeforge eval --json` prints. */
public final class Json {
    static final ObjectMapper MAPPER = new ObjectMapper();

    private Json() {}

    static ObjectNode merge(MergeResult r) {
        return MAPPER.createObjectNode().put("output", r.output().toString()).put("tensors", r.tensors()).put("bytes_in", r.bytesIn())
                .put("bytes_out", r.bytesOut()).put("seconds", r.seconds()).put("peak_working_bytes", r.peakWorkingBytes())
                .put("peak_rss_bytes", r.peakRssBytes());
    }

    static ObjectNode plan(PlanResult p) {
        ObjectNode n = MAPPER.createObjectNode().put("method", p.method()).put("base_model", p.baseModel());
        p.models().forEach(n.putArray("models")::add);
        var slices = n.putArray("slice_sources");
        p.sliceSources().forEach(s -> slices.addObject().put("model", s.model()).put("layer_start", s.layerStart()).put("layer_end", s.layerEnd()));
        n.put("tensors", p.tensors()).put("out_layers", p.outLayers()).put("bytes_in", p.bytesIn()).put("bytes_out", p.bytesOut());
        p.shardFiles().forEach(n.putArray("shards")::add);
        n.put("peak_working_bytes", p.peakWorkingBytes()).put("predicted_peak_bytes", p.predictedPeakBytes()).put("memory_budget", p.memoryBudget());
        if (p.aimOmega() != null) n.put("aim_omega", p.aimOmega());
        return n;
    }

    static ObjectNode mergeEval(MergeEvalResult r) {
        ObjectNode n = MAPPER.createObjectNode();
        n.set("eval", eval(r.eval()));
        return n.put("tensors", r.tensors()).put("merge_seconds", r.mergeSeconds()).put("eval_seconds", r.evalSeconds())
                .put("peak_working_bytes", r.peakWorkingBytes()).put("mode", r.mode().key()).put("peak_held_bytes", r.peakHeldBytes());
    }

    static ObjectNode calibrate(CalibrateResult r) {
        return MAPPER.createObjectNode().put("output", r.output().toString()).put("seconds", r.seconds());
    }

    /** {"model", "text": {file, mean_nll, perplexity, tokens, documents}, "tasks": {file name: {accuracy, ...}}}. */
    public static ObjectNode eval(EvalResult r) {
        ObjectNode result = MAPPER.createObjectNode();
        result.put("model", r.model());
        if (r.text() != null) {
            EvalResult.TextResult l = r.text();
            result.putObject("text").put("file", l.file().toString()).put("mean_nll", l.meanNll()).put("perplexity", l.perplexity())
                    .put("tokens", l.tokens()).put("documents", l.documents());
        }
        ObjectNode ts = result.putObject("tasks");
        for (EvalResult.TaskResult s : r.tasks()) {
            ts.putObject(s.file().getFileName().toString()).put("accuracy", s.accuracy()).put("accuracy_rows", s.accuracyRows())
                    .put("answer_nll", s.answerNll()).put("nll_rows", s.nllRows());
        }
        return result;
    }

    /** The first line the server prints: it is ready, its budget and (with HTTP) where it listens. */
    public static ObjectNode readyLine(long budgetBytes, int maxJobs) {
        ObjectNode n = MAPPER.createObjectNode();
        n.putNull("id");
        return n.put("event", "ready").put("protocol", 1).put("memory_budget_bytes", budgetBytes).put("max_jobs", maxJobs);
    }
}
