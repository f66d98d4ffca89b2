package dev.mergeforge.bench;

import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.errors.MergeforgeException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;

/**
 * Times mergekit on the same config with a Python interpreter that has it installed (a throwaway
 * venv outside the repo; never a dependency of ours). A small driver runs mergekit's YAML entry
 * point in-process and reports wall time and peak RSS (ru_maxrss) on its last stdout line.
 */
public final class MergekitRun {
    private static final String DRIVER = String.join("\n",
            "import sys, time, resource",
            "t0 = time.time()",
            "from mergekit.scripts.run_yaml import main",
            "sys.argv = ['mergekit-yaml', sys.argv[1], sys.argv[2], '--out-shard-size', '5B', '--lazy-unpickle', '--allow-crimes']",
            "try:",
            "    main()",
            "except SystemExit as e:",
            "    if e.code not in (0, None): raise",
            "print('MERGEKIT', time.time() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, flush=True)");

    private MergekitRun() {}

    /**
     * Fails with a one-line {@link ConfigException} unless {@code python} starts and imports
     * mergekit's YAML entry point: checked before a benchmark generates anything.
     */
    public static void check(String python) {
        String fix = "; pass --mergekit a Python interpreter with mergekit 0.1.4 installed (e.g. a venv's bin/python)";
        try {
            Process p = new ProcessBuilder(List.of(python, "-c", "import mergekit.scripts.run_yaml")).redirectErrorStream(true).start();
            String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            if (!p.waitFor(120, java.util.concurrent.TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new ConfigException("--mergekit " + python + ": importing mergekit took over 2 minutes" + fix);
            }
            if (p.exitValue() != 0) {
                String last = text.isEmpty() ? "exit " + p.exitValue() : text.lines().reduce((a, b) -> b).orElse("").strip();
                throw new ConfigException("--mergekit " + python + " cannot import mergekit (" + last + ")" + fix);
            }
        } catch (IOException e) {
            throw new ConfigException("--mergekit " + python + " cannot be started (" + e.getMessage().lines().findFirst().orElse("") + ")" + fix);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new MergeforgeException("mergekit check interrupted");
        }
    }

    /** Seconds (including Python start-up and imports) and peak RSS of one mergekit merge. */
    public static ChildMerge.Figures run(String python, Path config, Path out, long bytesIn, long bytesOut) {
        try {
            Process p = new ProcessBuilder(List.of(python, "-c", DRIVER, config.toString(), out.toString()))
                    .redirectError(ProcessBuilder.Redirect.DISCARD).start();
            String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            int rc = p.waitFor();
            for (String line : text.split("\n")) {
                if (line.startsWith("MERGEKIT ")) {
                    String[] f = line.trim().split("\\s+");
                    return new ChildMerge.Figures(Double.parseDouble(f[1]), bytesIn, bytesOut, Long.parseLong(f[2]), 0);
                }
            }
            throw new MergeforgeException("mergekit run with " + python + " on " + config + " failed (exit " + rc
                    + "); check that `" + python + " -c 'import mergekit'` works");
        } catch (IOException e) {
            throw new MergeforgeException("cannot run " + python + ": " + e.getMessage() + "; pass --mergekit a Python with mergekit installed", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new MergeforgeException("mergekit benchmark interrupted");
        }
    }
}
