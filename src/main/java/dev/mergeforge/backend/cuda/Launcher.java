package dev.mergeforge.backend.cuda;

/** Queues one kernel launch; {@link CudaContext} is the real one, tests record the calls instead. */
@FunctionalInterface
public interface Launcher {
    /** Launches k on grid × block threads with args in kernel order (see {@link Kernel#signature}). */
    void launch(Kernel k, long grid, int block, Object... args);
}
