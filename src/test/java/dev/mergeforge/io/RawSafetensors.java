package dev.mergeforge.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Hand-made safetensors files for tests: any header bytes, any data length, nothing checked. */
final class RawSafetensors {
    private RawSafetensors() {}

    static Path write(Path p, String header, int dataBytes) throws IOException {
        return write(p, header.getBytes(StandardCharsets.UTF_8), dataBytes);
    }

    static Path write(Path p, byte[] header, int dataBytes) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(header.length).put(header);
        for (int i = 0; i < dataBytes; i++) b.put((byte) i);
        Files.write(p, b.array());
        return p;
    }
}
