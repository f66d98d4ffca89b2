package dev.mergeforge.calib;

import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.model.TextTokenizer;
import dev.mergeforge.model.Zoo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CalibrationDataTest {
    @Test
    void pretokenizedRowsAreConcatenatedAndCutWithoutAddingTokens(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("ids.jsonl");
        Files.write(f, List.of("{\"input_ids\": [1, 2, 3, 4, 5]}", "", "{\"input_ids\": [6, 7]}", "{\"input_ids\": [8, 9, 10, 11]}"));
        TokenBlocks b = CalibrationData.load(f, null, 1, 10, 3);
        // stream 1..11 cut into whole blocks of 3: [1,2,3] [4,5,6] [7,8,9]; 10, 11 dropped
        assertEquals(3, b.samples());
        for (int i = 0; i < 3; i++) assertArrayEquals(new int[] {3 * i + 1, 3 * i + 2, 3 * i + 3}, b.blocks()[i]);
        TokenBlocks two = CalibrationData.load(f, null, 1, 2, 3);
        assertEquals(2, two.samples());
        // rows of different lengths and automatic seq_len: 512, too long for 11 ids
        ConfigException e = assertThrows(ConfigException.class, () -> CalibrationData.load(f, null, 1, 4, 0));
        assertTrue(e.getMessage().contains("512") && e.getMessage().contains(f.toString()), e.getMessage());
    }

    @Test
    void automaticSeqLenTakesTheCommonRowLength(@TempDir Path dir) throws IOException {
        Path f = dir.resolve("ids.jsonl");
        Files.write(f, List.of("{\"input_ids\": [1, 2, 3, 4]}", "{\"input_ids\": [1, 6, 7, 8]}"));
        TokenBlocks b = CalibrationData.load(f, null, 1, 128, 0);
        assertEquals(4, b.seqLen());
        assertArrayEquals(new int[] {1, 6, 7, 8}, b.blocks()[1]);
    }

    @Test
    void fingerprintIsSha256OfLittleEndianInt32Ids() throws NoSuchAlgorithmException {
        int[][] blocks = {{1, 2}, {300, -1}};
        ByteBuffer buf = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        for (int[] b : blocks) for (int id : b) buf.putInt(id);
        String expect = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(buf.array()));
        assertEquals(expect, TokenBlocks.fingerprint(blocks));
        assertEquals(expect, new TokenBlocks(blocks, 2, "x").fingerprint());
    }

    @Test
    void badFilesAreRefusedWithFileAndLine(@TempDir Path dir) throws IOException {
        Path mixed = dir.resolve("mixed.jsonl");
        Files.write(mixed, List.of("{\"input_ids\": [1, 2]}", "{\"text\": \"hello\"}"));
        assertTrue(assertThrows(ConfigException.class, () -> CalibrationData.load(mixed, null, 1, 1, 2)).getMessage().contains("mixes"));
        Path broken = dir.resolve("broken.jsonl");
        Files.write(broken, List.of("{\"text\": \"a\"}", "{oops"));
        assertTrue(assertThrows(ConfigException.class, () -> CalibrationData.load(broken, null, 1, 1, 2)).getMessage().contains("line 2"));
        Path noField = dir.resolve("nofield.jsonl");
        Files.write(noField, List.of("{\"content\": \"a\"}"));
        assertTrue(assertThrows(ConfigException.class, () -> CalibrationData.load(noField, null, 1, 1, 2)).getMessage().contains("'text'"));
        Path text = dir.resolve("docs.txt");
        Files.write(text, List.of("some words"));
        assertTrue(assertThrows(ConfigException.class, () -> CalibrationData.load(text, null, 1, 1, 2)).getMessage().contains("tokenizer"));
        Path empty = dir.resolve("empty.txt");
        Files.write(empty, List.of("", " "));
        assertTrue(assertThrows(ConfigException.class, () -> CalibrationData.load(empty, null, 1, 1, 2)).getMessage().contains("empty"));
    }

    @Test
    void jsonlTextAndPlainTextGiveTheSameBlocks(@TempDir Path dir) throws IOException {
        Path zoo = Zoo.dir();
        List<String> lines = Files.readAllLines(zoo.resolve("data/general_calib.txt"));
        Path jsonl = dir.resolve("calib.jsonl");
        Files.write(jsonl, lines.stream().map(l -> "{\"text\": \"" + l.replace("\"", "\\\"") + "\"}").toList());
        try (TextTokenizer tok = TextTokenizer.open(zoo.resolve("base"))) {
            TokenBlocks a = CalibrationData.load(zoo.resolve("data/general_calib.txt"), tok, 1, 8, 64);
            TokenBlocks b = CalibrationData.load(jsonl, tok, 1, 8, 64);
            assertEquals(a.fingerprint(), b.fingerprint());
            assertEquals(8, a.samples());
            for (int[] block : a.blocks()) assertEquals(1, block[0]);
            // the text of a block is the running text of the documents, without BOS
            String joined = String.join(" ", lines);
            assertEquals(joined.substring(0, 63), tok.decode(a.blocks()[0]));
            assertEquals(joined.substring(63, 126), tok.decode(a.blocks()[1]));
        }
    }
}
