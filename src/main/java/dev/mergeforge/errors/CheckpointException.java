package dev.mergeforge.errors;

/** A model directory, safetensors file or tensor that cannot be used as given (exit code 1). */
public class CheckpointException extends MergeforgeException {
    public CheckpointException(String message) { super(message); }

    public CheckpointException(String message, Throwable cause) { super(message, cause); }
}
