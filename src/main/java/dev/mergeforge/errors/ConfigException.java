package dev.mergeforge.errors;

/** A problem with the merge configuration or the command line (exit code 2). */
public class ConfigException extends MergeforgeException {
    public ConfigException(String message) { super(message); }

    public ConfigException(String message, Throwable cause) { super(message, cause); }

    @Override public int exitCode() { return 2; }
}
