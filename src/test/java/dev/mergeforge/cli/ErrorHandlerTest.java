package dev.mergeforge.cli;

import dev.mergeforge.run.MergeFixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** How the CLI turns failures the merge command cannot anticipate into one line. */
class ErrorHandlerTest {
    @CommandLine.Command(name = "t")
    static final class Throws implements Callable<Integer> {
        final RuntimeException e;
        Throws(RuntimeException e) { this.e = e; }
        @Override public Integer call() { throw e; }
    }

    static MergeFixtures.Run run(RuntimeException e, String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        CommandLine cl = new CommandLine(new Throws(e));
        cl.setExecutionExceptionHandler(new ErrorHandler());
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        return new MergeFixtures.Run(cl.execute(args), out.toString(), err.toString());
    }

    @Test
    void anIoFailureIsAUserErrorOnOneLine() {
        MergeFixtures.Run r = run(new UncheckedIOException("cannot write /x/model.safetensors: No space left on device\n; check free disk space",
                new IOException("No space left on device")));
        CliFailure.assertOneLine(r, 1, "/x/model.safetensors", "No space left", "check free disk space");
    }

    @Test
    void aBugSaysItIsOneAndHowToReportIt() {
        MergeFixtures.Run r = run(new IllegalStateException("boom"));
        assertEquals(1, r.exit());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().startsWith("error: internal error") && r.err().contains("--debug"), r.err());
    }

    @Test
    void tooLittleDiskSpaceIsRefusedBeforeAnythingIsWritten(@TempDir Path dir) throws Exception {
        // /proc reports no usable space (and refuses new directories even to root)
        Path cfg = MergeFixtures.yaml(dir, "cfg.yml", "merge_method: linear\nmodels:\n  - model: " + dir.resolve("m") + "\n    parameters: {weight: 1.0}\n");
        dev.mergeforge.fixtures.RandomModels.builder().arch(dev.mergeforge.fixtures.Arch.LLAMA).hidden(16).intermediate(24).layers(1)
                .heads(2).kvHeads(1).vocab(32).maxPositions(32).seed(1).write(dir.resolve("m"));
        for (String ev : new String[] {"-q", "--events=json"}) {
            MergeFixtures.Run r = MergeFixtures.cli("merge", cfg.toString(), "/proc/mergeforge-out", ev, "--backend", "java");
            CliFailure.assertOneLine(r, 1, "/proc", "disk space", "choose another OUTPUT_DIR");
            if (ev.startsWith("--events")) assertTrue(r.out().contains("\"event\":\"error\""), r.out());
        }
        CliFailure.assertNothingWritten(Path.of("/proc/mergeforge-out"));
    }
}
