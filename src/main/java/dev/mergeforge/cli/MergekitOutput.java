package dev.mergeforge.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.config.MergeConfig;
import dev.mergeforge.config.Slice;
import dev.mergeforge.config.SliceSource;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.errors.MergeforgeException;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.io.OutputDir;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * Runs `merge` for `mergekit-yaml` and gives its output mergekit's layout, atomically: the merge
 * writes into a directory inside OUT_PATH's temporary twin, the layout is applied there
 * ({@code mergekit_config.yml} = the config file's text; README.md and mergekit_config.yml only with
 * the model card; tokenizer files only with --copy-tokenizer), and the whole is renamed to OUT_PATH.
 * Lines the merge prints are passed through with the inner directory's path replaced by OUT_PATH;
 * the {@code done} event waits until OUT_PATH is in place, as docs/events.md promises.
 */
final class MergekitOutput {
    /** What mergekit's flags change in the output. */
    record Layout(boolean copyTokenizer, boolean modelCard) {}

    /** The tokenizer files a merge copies (run/OutputFiles' list without generation_config.json). */
    static final List<String> TOKENIZER_FILES = List.of("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
            "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json", "chat_template.jinja");

    private MergekitOutput() {}

    static int run(CommandLine merge, MergeConfig cfg, Path config, Path outPath, List<String> mergeArgs, Layout layout) {
        Path target = outPath.toAbsolutePath().normalize();
        boolean replace = Files.exists(target);
        if (replace && !MergekitYamlCommand.replaceable(target)) {
            throw new ConfigException("OUT_PATH " + outPath + " exists and is neither empty nor an earlier merge (no config.json);"
                    + " remove it or choose another directory");
        }
        String source = readConfig(config);
        try (OutputDir out = OutputDir.create(target, replace, inputDirs(cfg), 0)) {
            Path inner = out.temp().resolve("merged");
            PrintWriter outer = merge.getOut(), outerErr = merge.getErr();
            Rewriter rOut = new Rewriter(outer, inner.toString(), target.toString());
            Rewriter rErr = new Rewriter(outerErr, inner.toString(), target.toString());
            List<String> args = new ArrayList<>(List.of(config.toString(), inner.toString()));
            args.addAll(mergeArgs);
            int code;
            try {
                merge.setOut(new PrintWriter(rOut, true));
                merge.setErr(new PrintWriter(rErr, true));
                code = merge.execute(args.toArray(String[]::new));
            } finally {
                merge.setOut(outer);
                merge.setErr(outerErr);
            }
            rErr.finish();
            if (code != 0) {
                rOut.finish();
                return code;
            }
            apply(inner, out.temp(), source, layout, cfg);
            out.commit();
            rOut.release();
            rErr.release();
            rOut.finish();
            return 0;
        }
    }

    /** Moves the merge's files up into the directory that becomes OUT_PATH and applies mergekit's layout. */
    static void apply(Path inner, Path dir, String source, Layout layout, MergeConfig cfg) {
        try (var s = Files.list(inner)) {
            for (Path p : s.toList()) Files.move(p, dir.resolve(p.getFileName()), StandardCopyOption.ATOMIC_MOVE);
            Files.delete(inner);
            if (layout.modelCard()) {
                Files.writeString(dir.resolve("mergekit_config.yml"), source);
            } else {
                Files.deleteIfExists(dir.resolve("README.md"));
            }
            // mergekit builds a tokenizer whenever the config asks for one (tokenizer_source), whatever --copy-tokenizer says
            if (!layout.copyTokenizer() && cfg.tokenizerSource() == null) {
                for (String f : TOKENIZER_FILES) Files.deleteIfExists(dir.resolve(f));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot lay out the merged model in " + dir + ": " + e.getMessage()
                    + "; check free disk space and permissions", e);
        }
    }

    private static String readConfig(Path config) {
        try {
            return Files.readString(config);
        } catch (IOException e) {
            throw new ConfigException("cannot read config " + config + ": " + e.getMessage() + "; check the path");
        }
    }

    /** The directories of every model the config names (OUT_PATH must be none of them, nor inside one). */
    static List<Path> inputDirs(MergeConfig cfg) {
        Set<String> refs = new LinkedHashSet<>();
        if (cfg.baseModel() != null) refs.add(cfg.baseModel());
        cfg.models().forEach(m -> refs.add(m.model()));
        for (int i = 0; i < cfg.slices().size(); i++) {
            Slice s = cfg.slices().get(i);
            for (SliceSource src : s.sources()) refs.add(src.model());
            if (cfg.sliceBaseModel(i) != null) refs.add(cfg.sliceBaseModel(i));
        }
        List<Path> dirs = new ArrayList<>();
        for (String r : refs) {
            try (Checkpoint c = Checkpoint.open(r)) {
                dirs.add(c.dir());
            }
        }
        return dirs;
    }

    /**
     * A line filter in front of one of the caller's writers: replaces the inner directory's path by
     * OUT_PATH and holds the {@code done} event back until {@link #release()} (after the commit).
     */
    static final class Rewriter extends Writer {
        private static final ObjectMapper JSON = new ObjectMapper();
        private final PrintWriter to;
        private final String from, into, fromJson, intoJson;
        private final StringBuilder line = new StringBuilder();
        private final List<String> held = new ArrayList<>();

        Rewriter(PrintWriter to, String from, String into) {
            this.to = to;
            this.from = from;
            this.into = into;
            this.fromJson = jsonBody(from);
            this.intoJson = jsonBody(into);
        }

        private static String jsonBody(String s) {
            try {
                String q = JSON.writeValueAsString(s);
                return q.substring(1, q.length() - 1);
            } catch (JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
        }

        @Override public synchronized void write(char[] buf, int off, int len) {
            for (int i = off; i < off + len; i++) {
                char c = buf[i];
                if (c == '\n') {
                    emit(line.toString());
                    line.setLength(0);
                } else if (c != '\r') {
                    line.append(c);
                }
            }
        }

        private void emit(String l) {
            if (l.startsWith("{\"event\":\"done\"")) {
                held.add(doneLine(l));
                return;
            }
            to.println(l.replace(fromJson, intoJson).replace(from, into));
        }

        private String doneLine(String l) {
            try {
                ObjectNode n = (ObjectNode) JSON.readTree(l);
                n.put("output", into);
                return n.toString();
            } catch (IOException | ClassCastException e) {
                throw new MergeforgeException("internal error: unreadable done event " + l);
            }
        }

        /** Prints the held-back lines (OUT_PATH is now in place). */
        synchronized void release() {
            held.forEach(to::println);
            held.clear();
        }

        /** Prints a last unterminated line and flushes; held lines of a failed run are dropped. */
        synchronized void finish() {
            if (!line.isEmpty()) emit(line.toString());
            line.setLength(0);
            to.flush();
        }

        @Override public synchronized void flush() { to.flush(); }

        @Override public void close() { flush(); }
    }
}
