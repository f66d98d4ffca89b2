package dev.mergeforge.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/** Byte-level edits of safetensors files and model directories, to build the broken inputs strangers send. */
final class StSurgery {
    static final ObjectMapper JSON = new ObjectMapper();

    private StSurgery() {}

    /** A copy of a model directory (regular files, links followed). */
    static Path copy(Path model, Path to) throws IOException {
        Files.createDirectories(to);
        try (var s = Files.list(model)) {
            for (Path f : s.toList()) Files.copy(f, to.resolve(f.getFileName()));
        }
        return to;
    }

    static long headerLength(byte[] all) {
        return ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    static ObjectNode header(byte[] all) throws IOException {
        return (ObjectNode) JSON.readTree(new String(all, 8, (int) headerLength(all), StandardCharsets.UTF_8));
    }

    /** The file with the header replaced by the given bytes (length field updated), data block unchanged. */
    static byte[] withHeader(byte[] all, byte[] header) {
        long n = headerLength(all);
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + (int) (all.length - 8 - n)).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(header.length).put(header).put(all, (int) (8 + n), (int) (all.length - 8 - n));
        return b.array();
    }

    /** Rewrites the header JSON of a file in place, keeping its data block. */
    static void editHeader(Path st, Consumer<ObjectNode> edit) throws IOException {
        byte[] all = Files.readAllBytes(st);
        ObjectNode h = header(all);
        edit.accept(h);
        Files.write(st, withHeader(all, JSON.writeValueAsBytes(h)));
    }

    /** Removes one tensor (entry and bytes), shifting the later offsets down. */
    static void removeTensor(Path st, String name) throws IOException {
        byte[] all = Files.readAllBytes(st);
        ObjectNode h = header(all);
        long n = headerLength(all);
        JsonNode gone = h.remove(name);
        long b0 = gone.get("data_offsets").get(0).asLong(), b1 = gone.get("data_offsets").get(1).asLong();
        List<String> names = new ArrayList<>();
        h.fieldNames().forEachRemaining(names::add);
        for (String k : names) {
            if (k.equals("__metadata__")) continue;
            var off = (com.fasterxml.jackson.databind.node.ArrayNode) h.get(k).get("data_offsets");
            long a = off.get(0).asLong(), b = off.get(1).asLong();
            if (a >= b1) {
                off.set(0, a - (b1 - b0));
                off.set(1, b - (b1 - b0));
            }
        }
        ByteArrayOutputStream data = new ByteArrayOutputStream();
        data.write(all, (int) (8 + n), (int) b0);
        data.write(all, (int) (8 + n + b1), (int) (all.length - 8 - n - b1));
        byte[] hb = JSON.writeValueAsBytes(h);
        ByteBuffer out = ByteBuffer.allocate(8 + hb.length + data.size()).order(ByteOrder.LITTLE_ENDIAN);
        out.putLong(hb.length).put(hb).put(data.toByteArray());
        Files.write(st, out.array());
    }

    /** Overwrites the 8-byte header length field. */
    static void setHeaderLength(Path st, long n) throws IOException {
        byte[] all = Files.readAllBytes(st);
        ByteBuffer.wrap(all, 0, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(n);
        Files.write(st, all);
    }
}
