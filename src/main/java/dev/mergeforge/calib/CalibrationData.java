package dev.mergeforge.calib;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.model.TextTokenizer;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Logger;

/**
 * Reads calibration data (docs/calibration.md, "Calibration data") into blocks: plain text (one document a line), JSONL
 * with a {@code text} field, or JSONL with pre-tokenized {@code input_ids}.
 *
 * <p>Text: documents are joined by single spaces and tokenized with the model's tokenizer.json
 * (no special tokens), and the stream is cut into blocks of {@code bos} + seqLen−1 tokens
 * (seqLen tokens when the model has no BOS). Pre-tokenized rows are used as given: concatenated
 * and cut into seqLen blocks, nothing added. Only whole blocks are kept, the first
 * {@code samples} of them.
 */
public final class CalibrationData {
    private static final Logger LOG = Logger.getLogger(CalibrationData.class.getName());
    private static final ObjectMapper JSON = new ObjectMapper();

    private CalibrationData() {}

    /** The documents of a file: either all text or all pre-tokenized. */
    record Documents(List<String> texts, List<int[]> ids) {
        boolean pretokenized() { return ids != null; }
    }

    /**
     * Loads blocks from {@code file}. {@code seqLen} 0 means automatic: the common row length of
     * pre-tokenized data whose rows all have one length, else 512.
     *
     * @param tokenizer used for text data; may be null when the data is pre-tokenized
     * @param bos the id put at the start of every text block, or −1 for none
     */
    public static TokenBlocks load(Path file, TextTokenizer tokenizer, int bos, int samples, int seqLen) {
        if (samples <= 0) throw new ConfigException("calibration samples must be > 0, got " + samples);
        if (seqLen < 0 || seqLen == 1) throw new ConfigException("calibration seq_len must be >= 2, got " + seqLen);
        Documents docs = read(file);
        if (docs.pretokenized()) {
            int len = seqLen > 0 ? seqLen : commonLength(docs.ids());
            return cut(concat(docs.ids()), -1, samples, len, file);
        }
        if (tokenizer == null) {
            throw new ConfigException(file + ": text data needs the model's tokenizer.json; add it to the model folder "
                    + "or give pre-tokenized JSONL with input_ids");
        }
        int len = seqLen > 0 ? seqLen : 512;
        int perBlock = bos >= 0 ? len - 1 : len;
        long needed = (long) samples * perBlock;
        // tokenize document by document only to know how many documents are needed
        StringBuilder joined = new StringBuilder();
        long estimate = 0;
        for (String d : docs.texts()) {
            if (!joined.isEmpty()) joined.append(' ');
            joined.append(d);
            estimate += tokenizer.encode(d).length + 1;
            if (estimate > needed + needed / 10 + 64) break;
        }
        return cut(tokenizer.encode(joined.toString()), bos, samples, len, file);
    }

    private static int commonLength(List<int[]> rows) {
        int len = rows.get(0).length;
        for (int[] r : rows) if (r.length != len) return 512;
        return Math.max(2, len);
    }

    private static int[] concat(List<int[]> rows) {
        int n = 0;
        for (int[] r : rows) n = Math.addExact(n, r.length);
        int[] out = new int[n];
        int at = 0;
        for (int[] r : rows) {
            System.arraycopy(r, 0, out, at, r.length);
            at += r.length;
        }
        return out;
    }

    /** Cuts the stream into whole blocks of [bos] + tokens. */
    static TokenBlocks cut(int[] stream, int bos, int samples, int seqLen, Path file) {
        int perBlock = bos >= 0 ? seqLen - 1 : seqLen;
        int available = stream.length / perBlock;
        if (available == 0) {
            throw new ConfigException(file + ": " + stream.length + " tokens make no whole block of " + seqLen
                    + "; give more data or a smaller seq_len");
        }
        int n = Math.min(samples, available);
        if (n < samples) LOG.warning(file + ": only " + n + " blocks of " + seqLen + " tokens available, " + samples + " asked for; using " + n);
        int[][] blocks = new int[n][seqLen];
        for (int b = 0; b < n; b++) {
            int at = 0;
            if (bos >= 0) blocks[b][at++] = bos;
            System.arraycopy(stream, b * perBlock, blocks[b], at, perBlock);
        }
        return new TokenBlocks(blocks, seqLen, file.toString());
    }

    /** Reads every non-empty line; JSONL when the name ends in .jsonl/.json or the first line is an object. */
    static Documents read(Path file) {
        List<String> lines = new ArrayList<>();
        try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            for (String l; (l = r.readLine()) != null; ) if (!l.isBlank()) lines.add(l);
        } catch (IOException e) {
            throw new ConfigException("cannot read calibration data " + file + ": " + e.getMessage() + "; check the path", e);
        }
        if (lines.isEmpty()) throw new ConfigException(file + ": no documents (the file is empty)");
        String name = file.getFileName().toString();
        boolean jsonl = name.endsWith(".jsonl") || name.endsWith(".json") || lines.get(0).stripLeading().startsWith("{");
        if (!jsonl) return new Documents(lines, null);
        List<String> texts = new ArrayList<>();
        List<int[]> ids = new ArrayList<>();
        for (int i = 0; i < lines.size(); i++) parseLine(file, i + 1, lines.get(i), texts, ids);
        if (!texts.isEmpty() && !ids.isEmpty()) {
            throw new ConfigException(file + ": mixes 'text' and 'input_ids' rows; use one kind per file");
        }
        return ids.isEmpty() ? new Documents(texts, null) : new Documents(null, ids);
    }

    private static void parseLine(Path file, int lineNo, String line, List<String> texts, List<int[]> ids) {
        JsonNode row;
        try {
            row = JSON.readTree(line);
        } catch (IOException e) {
            throw new ConfigException(file + " line " + lineNo + ": not valid JSON; JSONL needs one object per line");
        }
        JsonNode in = row == null ? null : row.get("input_ids");
        if (in != null && in.isArray()) {
            int[] r = new int[in.size()];
            for (int j = 0; j < r.length; j++) {
                if (!in.get(j).canConvertToInt()) throw new ConfigException(file + " line " + lineNo + ": input_ids holds a non-integer");
                r[j] = in.get(j).asInt();
            }
            ids.add(r);
        } else if (row != null && row.path("text").isTextual()) {
            texts.add(row.get("text").asText());
        } else {
            throw new ConfigException(file + " line " + lineNo + ": needs a string 'text' or an integer array 'input_ids'");
        }
    }
}
