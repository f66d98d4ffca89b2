package dev.mergeforge.calib;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * Calibration blocks of token ids, all {@code seqLen} long, with where they came from.
 * The fingerprint is the SHA-256 of the ids as little-endian int32, block after block
 * (docs/aim-stats.md), so any tool can recompute it.
 */
public record TokenBlocks(int[][] blocks, int seqLen, String source, String fingerprint) {
    public TokenBlocks {
        if (blocks.length == 0) throw new IllegalArgumentException("no calibration blocks from " + source);
        for (int[] b : blocks) {
            if (b.length != seqLen) throw new IllegalArgumentException("block of " + b.length + " ids, expected " + seqLen);
        }
    }

    public TokenBlocks(int[][] blocks, int seqLen, String source) {
        this(blocks, seqLen, source, fingerprint(blocks));
    }

    public int samples() { return blocks.length; }

    public long tokens() { return (long) blocks.length * seqLen; }

    /** sha-256 over every id as 4 little-endian bytes, blocks in order, hex. */
    public static String fingerprint(int[][] blocks) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            for (int[] b : blocks) {
                ByteBuffer buf = ByteBuffer.allocate(4 * b.length).order(ByteOrder.LITTLE_ENDIAN);
                buf.asIntBuffer().put(b);
                md.update(buf.array());
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }
}
