package dev.mergeforge.merge;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.tensor.Shape;
import dev.mergeforge.tensor.Tile;
import dev.mergeforge.tensor.TilePool;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * What a method may use while merging one tensor: the backend's ops, scratch tiles from the pool
 * (return them before {@code merge} returns), the run's seed and a log for one-line notes.
 */
public record MergeContext(Backend backend, TilePool pool, long seed, Consumer<String> log) {

    public Tile scratch(Shape shape) { return pool.borrow(shape); }

    public void release(Tile t) { pool.release(t); }

    public void note(String message) { log.accept(message); }

    /**
     * Call before reading or writing these tiles' memory directly (Tile.get/set/data) rather than
     * through the backend's ops: see {@link Backend#hostAccess}.
     */
    @SafeVarargs
    public final void hostAccess(List<Tile>... groups) {
        List<Tile> all = new ArrayList<>();
        for (List<Tile> g : groups) all.addAll(g);
        backend.hostAccess(all.toArray(Tile[]::new));
    }
}
