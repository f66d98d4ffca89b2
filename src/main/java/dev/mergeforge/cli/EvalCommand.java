package dev.mergeforge.cli;

import dev.mergeforge.api.CancellationToken;
import dev.mergeforge.api.EvalRequest;
import dev.mergeforge.api.EvalResult;
import dev.mergeforge.api.EventListener;
import dev.mergeforge.api.Mergeforge;
import dev.mergeforge.serve.Json;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/** `mergeforge eval MODEL [--text FILE] [--tasks FILE.jsonl ...]`: compare merges with the calibration runtime. */
@Command(mixinStandardHelpOptions = true, name = "eval", description = "Evaluate a model: mean token loss / perplexity on text, exact match and answer NLL on {prompt, answer} JSONL tasks.")
final class EvalCommand implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Parameters(index = "0", paramLabel = "MODEL", description = "Model directory or HF cache id.")
    String model;

    @Option(names = "--text", description = "Text file (one document a line) or JSONL with \"text\": mean token NLL and perplexity.")
    Path text;

    @Option(names = "--tasks", arity = "1..*", description = "JSONL files of {\"prompt\", \"answer\"}: greedy exact match and teacher-forced answer NLL.")
    List<Path> tasks = new ArrayList<>();

    @Option(names = "--max-tokens", defaultValue = "128", description = "Tokens scored per text document (<s> included; default 128).")
    int maxTokens;

    @Option(names = "--rows", defaultValue = "100", description = "Task rows evaluated per file (default 100).")
    int rows;

    @Option(names = "--device", defaultValue = "cpu", paramLabel = "cpu|cuda[:N]",
            description = "Where the teacher-forced forward passes (text loss, answer NLL) run: cpu (default) or GPU N; greedy decoding stays on the CPU.")
    String device;

    @Option(names = "--threads", defaultValue = "0", description = "Worker threads (0 = one per core).")
    int threads;

    @Option(names = "--json", description = "Print the results as one JSON object.")
    boolean json;

    @Option(names = "--debug", description = "Print stack traces with errors.")
    boolean debug;

    @Override
    public Integer call() {
        EvalResult r = Mergeforge.eval(new EvalRequest(model, text, tasks, maxTokens, rows, device, threads), EventListener.NONE, new CancellationToken());
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            out.println(Json.eval(r).toString());
        } else {
            if (r.text() != null) {
                EvalResult.TextResult l = r.text();
                out.printf(Locale.ROOT, "%s: mean token NLL %.4f, perplexity %.3f over %d tokens of %d documents%n",
                        l.file(), l.meanNll(), l.perplexity(), l.tokens(), l.documents());
            }
            for (EvalResult.TaskResult s : r.tasks()) {
                out.printf(Locale.ROOT, "%s: exact match %.3f (%d rows), answer NLL %.4f (%d rows)%n",
                        s.file(), s.accuracy(), s.accuracyRows(), s.answerNll(), s.nllRows());
            }
        }
        out.flush();
        return 0;
    }
}
