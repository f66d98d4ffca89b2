package dev.mergeforge.cli;

import dev.mergeforge.errors.MergeforgeException;
import picocli.CommandLine;

/**
 * Turns exceptions into one-line messages and exit codes: a {@link MergeforgeException} prints its
 * message (exit 2 for config/usage, 1 for runtime); a command-line mistake (unknown option, bad
 * option value, missing argument) prints picocli's reason and where the help is (exit 2); an
 * {@link java.io.UncheckedIOException} (disk full, permissions) prints its message (exit 1); anything
 * else is a bug and says so. Stack traces only with --debug (or MERGEFORGE_DEBUG=1).
 */
final class ErrorHandler implements CommandLine.IExecutionExceptionHandler, CommandLine.IParameterExceptionHandler {
    @Override
    public int handleParseException(CommandLine.ParameterException ex, String[] args) {
        CommandLine cl = ex.getCommandLine();
        var err = cl.getErr();
        String msg = ex.getMessage() == null ? "invalid command line" : ex.getMessage().replaceAll("\\s*\\R\\s*", " ").strip();
        err.println("error: " + msg + "; see '" + cl.getCommandSpec().qualifiedName() + " --help'");
        if (debug() || java.util.Arrays.asList(args).contains("--debug")) ex.printStackTrace(err);
        err.flush();
        return 2;
    }

    static boolean debug() {
        return Boolean.getBoolean("mergeforge.debug") || "1".equals(System.getenv("MERGEFORGE_DEBUG"));
    }

    private static String oneLine(String s) {
        return s == null ? "input/output error" : s.replaceAll("\\s*\\R\\s*", " ").strip();
    }

    @Override
    public int handleExecutionException(Exception ex, CommandLine cl, CommandLine.ParseResult parsed) {
        boolean debug = debug() || parsed.expandedArgs().contains("--debug");
        var err = cl.getErr();
        if (ex instanceof MergeforgeException me) {
            err.println("error: " + me.getMessage());
            if (debug) me.printStackTrace(err);
            err.flush();
            return me.exitCode();
        }
        if (ex instanceof java.io.UncheckedIOException io) {
            // the file system said no (disk full, permissions, a vanished file): the message names the path and the fix
            err.println("error: " + oneLine(io.getMessage()));
            if (debug) ex.printStackTrace(err);
            err.flush();
            return 1;
        }
        err.println("error: internal error " + ex + " (a bug in mergeforge: rerun with --debug and report the trace)");
        if (debug) ex.printStackTrace(err);
        err.flush();
        return 1;
    }
}
