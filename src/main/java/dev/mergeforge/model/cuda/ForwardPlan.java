package dev.mergeforge.model.cuda;

import dev.mergeforge.errors.MergeforgeException;
import dev.mergeforge.model.ModelConfig;

import java.util.ArrayList;
import java.util.List;

/**
 * How a device forward pass lays out its sequences in a memory budget. Sequences are cut into
 * chunks of whole sequences (attention needs all of a sequence's keys) that the working buffers
 * hold at once. The hidden states of all tokens stay on the device ({@code resident}) when they
 * fit next to one layer's weights and one chunk's working buffers; else they stay on the host and
 * each chunk is uploaded and downloaded once per layer.
 *
 * @param starts      row of each sequence's first token, counting over all sequences
 * @param chunkTokens rows of the largest chunk (what the working buffers are sized for)
 */
record ForwardPlan(List<Chunk> chunks, int[] starts, int chunkTokens, long totalTokens, int maxLen, boolean resident,
                   boolean logits) {

    /** Sequences [first, end), rows [row0, row0 + tokens) of all sequences' rows. */
    record Chunk(int first, int end, int row0, int tokens, int[] starts) {
        /** Row of sequence b's first token, counting over all sequences. */
        int rowOf(int b) { return starts[b]; }
    }

    /** Plans {@code seqs} within {@code budgetBytes} of device memory; throws when one sequence cannot fit. */
    static ForwardPlan make(ModelConfig c, int[][] seqs, long budgetBytes, boolean logits) {
        long hd = c.hiddenSize(), qd = c.qDim(), kvd = c.kvDim(), f = c.intermediateSize(), vocab = c.vocabSize();
        int[] starts = new int[seqs.length];
        long total = 0;
        int maxLen = 1;
        for (int b = 0; b < seqs.length; b++) {
            if (total + seqs[b].length > Integer.MAX_VALUE) throw new MergeforgeException("more than 2^31 tokens in one forward pass; use fewer samples");
            starts[b] = (int) total;
            total += seqs[b].length;
            maxLen = Math.max(maxLen, seqs[b].length);
        }
        // working rows: xn, tmp [hd]; q, attn [qd]; k, v [kvd]; gate, up [f]; logits [vocab]
        long perToken = 4 * (2 * hd + 2 * qd + 2 * kvd + 2 * f) + (logits ? 4 * vocab : 0);
        long fixed = layerBytes(c) + 4L * maxLen * c.headDim() + 4 * total      // weights, rope tables, positions
                + 8 * (2 * hd + qd + f) + 8 * hd                                 // act-mean sums, final norm
                + (logits ? 4 * Math.min(vocab * hd, CudaForward.LM_HEAD_SLAB_FLOATS + hd) : 0);
        long hBytes = 4 * hd;
        boolean resident = fixed + hBytes * total + perToken * maxLen <= budgetBytes;
        long fit = resident ? (budgetBytes - fixed - hBytes * total) / perToken : (budgetBytes - fixed) / (perToken + hBytes);
        if (fit < maxLen) {
            throw new MergeforgeException("a sequence of " + maxLen + " tokens does not fit in the GPU memory budget of "
                    + (budgetBytes >> 20) + " MiB (one layer of the model takes " + (layerBytes(c) >> 20)
                    + " MiB as float32); use a shorter --seq-len or --device cpu");
        }
        List<Chunk> chunks = new ArrayList<>();
        int largest = 0;
        for (int b = 0; b < seqs.length; ) {
            int first = b, tokens = 0;
            while (b < seqs.length && tokens + (long) seqs[b].length <= fit) tokens += seqs[b++].length;
            chunks.add(new Chunk(first, b, starts[first], tokens, starts));
            largest = Math.max(largest, tokens);
        }
        return new ForwardPlan(List.copyOf(chunks), starts, Math.max(1, largest), total, maxLen, resident, logits);
    }

    /** float32 bytes of one decoder layer, biases included. */
    static long layerBytes(ModelConfig c) {
        long hd = c.hiddenSize(), qd = c.qDim(), kvd = c.kvDim(), f = c.intermediateSize();
        return 4 * (2 * hd + 2 * qd * hd + 2 * kvd * hd + 3 * f * hd + qd + 2 * kvd + 2 * hd + 2 * f);
    }

    @Override
    public String toString() {
        return totalTokens + " tokens in " + chunks.size() + " chunk(s) of at most " + chunkTokens + ", hidden states "
                + (resident ? "resident on the device" : "streamed from the host");
    }
}
