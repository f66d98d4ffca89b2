package dev.mergeforge.io;

import dev.mergeforge.errors.CheckpointException;
import dev.mergeforge.tensor.TensorView;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Property: whatever bytes a .safetensors file holds, {@link SafetensorsFile#open} either returns
 * a file whose every tensor lies inside the data block, or throws a {@link CheckpointException}
 * with a one-line message naming the file — never another exception. Seeded random bytes,
 * truncations, byte flips in valid files and hostile numbers in headers.
 */
class SafetensorsFuzzTest {
    static final long SEED = 424242L;
    static final int TRIES = 300;
    @TempDir Path dir;

    static final String HEADER = "{\"__metadata__\":{\"format\":\"pt\"},"
            + "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
            + "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[24,32]},"
            + "\"c\":{\"dtype\":\"F16\",\"shape\":[1,2,1],\"data_offsets\":[32,36]},"
            + "\"d\":{\"dtype\":\"I8\",\"shape\":[],\"data_offsets\":[36,37]}}";
    static final String[] HOSTILE = {"-1", "0", "9223372036854775807", "9223372036854775808", "18446744073709551615", "1e30",
            "1.5", "-0", "4294967296", "37", "36", "\"7\"", "null", "[]", "{}", "true"};

    static byte[] file(String header, int dataBytes, Random r) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h);
        byte[] data = new byte[dataBytes];
        r.nextBytes(data);
        b.put(data);
        return b.array();
    }

    static byte[] mutate(Random r) {
        byte[] valid = file(HEADER, 37, r);
        return switch (r.nextInt(6)) {
            case 0 -> { // random bytes
                byte[] b = new byte[r.nextInt(200)];
                r.nextBytes(b);
                yield b;
            }
            case 1 -> Arrays.copyOf(valid, r.nextInt(valid.length)); // truncated
            case 2 -> { // flipped bytes anywhere
                byte[] b = valid.clone();
                for (int k = 1 + r.nextInt(4); k > 0; k--) b[r.nextInt(b.length)] ^= (byte) (1 + r.nextInt(255));
                yield b;
            }
            case 3 -> { // a hostile header length
                byte[] b = valid.clone();
                long[] lens = {-1L, Long.MAX_VALUE, 5_000_000_000L, 0, 1, 2, b.length, b.length - 8, 101L << 20, r.nextLong()};
                ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).putLong(lens[r.nextInt(lens.length)]);
                yield b;
            }
            case 4 -> { // a hostile number or value in the header
                String[] nums = HEADER.split("(?<=[\\[,:])(?=\\d)");
                int i = 1 + r.nextInt(nums.length - 1);
                nums[i] = HOSTILE[r.nextInt(HOSTILE.length)] + nums[i].replaceFirst("^\\d+", "");
                yield file(String.join("", nums), r.nextInt(3) == 0 ? 36 + r.nextInt(4) : 37, r);
            }
            default -> { // a hostile dtype, name or structure
                String[] swaps = {"\"F32\"", "\"F64\"", "\"Q4\"", "\"\"", "7", "\"a\"", "\"__metadata__\"", "{\"x\":1}", "[0,24,99]",
                        "\"shape\"", "\"data_offsets\"", "\"b\":{}", "\"\\ud800\""};
                String[] targets = {"\"F32\"", "\"BF16\"", "[2,3]", "[0,24]", "\"b\"", "\"pt\"", "\"shape\"", "\"data_offsets\""};
                yield file(HEADER.replaceFirst(java.util.regex.Pattern.quote(targets[r.nextInt(targets.length)]),
                        java.util.regex.Matcher.quoteReplacement(swaps[r.nextInt(swaps.length)])), 37, r);
            }
        };
    }

    @Test
    void anyBytesOpenCleanlyOrFailWithOneLineCheckpointException() throws Exception {
        Random r = new Random(SEED);
        Path p = dir.resolve("fuzz.safetensors");
        int opened = 0;
        for (int i = 0; i < TRIES; i++) {
            byte[] b = mutate(r);
            Files.write(p, b);
            try (SafetensorsFile f = SafetensorsFile.open(p)) {
                opened++;
                long dataBytes = b.length - 8 - ByteBuffer.wrap(b, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
                long sum = 0;
                for (TensorView v : f.tensors().values()) {
                    assertTrue(v.data().byteSize() <= dataBytes, "try " + i + ": tensor inside the data block");
                    sum += v.data().byteSize();
                    v.data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE); // every byte readable
                }
                assertEquals(dataBytes, sum, "try " + i + ": the tensors tile the data block");
            } catch (CheckpointException e) {
                String m = e.getMessage();
                assertTrue(m.startsWith(p.toString()), "try " + i + ": names the file: " + m);
                assertFalse(m.contains("\n"), "try " + i + ": one line: " + m);
            } catch (Throwable t) {
                fail("try " + i + " (seed " + SEED + ") threw " + t + " for bytes " + Arrays.toString(Arrays.copyOf(b, Math.min(b.length, 400))), t);
            }
        }
        assertTrue(opened > 0 && opened < TRIES, "some mutations stay valid, most do not (" + opened + " opened)");
    }
}
