package dev.mergeforge.tensor;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Which free buffer a borrow reuses: the pool's own policy, or any larger one when asked per borrow. */
class TilePoolTest {
    private static final Shape LARGE = Shape.of(4L << 20), SMALL = Shape.of(64L << 10);

    @Test
    void aBorrowAskingForAnyLargerBufferReusesTheFreeLargeOnes() {
        try (TilePool pool = new TilePool()) {
            List<Tile> large = List.of(pool.borrow(LARGE), pool.borrow(LARGE));
            long held = pool.allocatedBytes();
            pool.releaseAll(large);
            Tile a = pool.borrow(SMALL, true), b = pool.borrow(SMALL, true);
            assertEquals(held, pool.allocatedBytes(), "two small tiles in the two free large buffers: nothing new allocated");
            assertEquals(SMALL, a.shape());
            assertTrue(large.stream().anyMatch(t -> t.data().address() == a.data().address()), "the small tile lies in a large buffer");
            pool.releaseAll(List.of(a, b));
        }
    }

    @Test
    void aPlainBorrowKeepsThePoolsPolicyAndTakesFreshMemoryForASmallTile() {
        try (TilePool pool = new TilePool()) {
            Tile large = pool.borrow(LARGE);
            long held = pool.allocatedBytes();
            pool.release(large);
            Tile small = pool.borrow(SMALL);
            assertEquals(held + SMALL.numel() * 4, pool.allocatedBytes(), "a buffer 64 times larger than asked is not lent by default");
            pool.release(small);
        }
    }
}
