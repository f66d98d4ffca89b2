package dev.mergeforge.errors;

/**
 * An error a user can cause and fix. The message is one line that names the file, tensor or key
 * at fault and says how to fix it; the CLI prints it without a stack trace.
 */
public class MergeforgeException extends RuntimeException {
    public MergeforgeException(String message) { super(message); }

    public MergeforgeException(String message, Throwable cause) { super(message, cause); }

    /** Process exit code the CLI uses: 2 for configuration and usage errors, 1 for runtime failures. */
    public int exitCode() { return 1; }
}
