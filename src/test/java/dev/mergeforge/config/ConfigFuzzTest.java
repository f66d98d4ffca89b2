package dev.mergeforge.config;

import dev.mergeforge.errors.ConfigException;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Property: whatever YAML-ish text arrives, the config reader either returns a config or throws a
 * {@link ConfigException} whose message is one line naming the file — never another exception, a
 * hang or a multi-line message. Inputs are random mutations of valid configs (seeded, so a failure
 * names the seed and try that reproduce it).
 */
class ConfigFuzzTest {
    static final long SEED = 20261123L;
    static final int TRIES = 400;

    static final List<String> VALID = List.of("""
            merge_method: ties
            base_model: ./base
            models:
              - model: ./math
                parameters: {weight: 1.0, density: 0.5}
              - model: ./code
                parameters:
                  weight: [0.3, 0.7]
                  density: 0.5
            parameters:
              normalize: true
            dtype: bfloat16
            """, """
            merge_method: slerp
            base_model: ./a
            slices:
              - sources:
                  - model: ./a
                    layer_range: [0, 4]
                  - model: ./b
                    layer_range: [0, 4]
            parameters:
              t:
                - filter: self_attn
                  value: [0, 0.5, 0.3, 0.7, 1]
                - value: 0.5
            dtype: float16
            """, """
            merge_method: linear
            models:
              - model: ./x
                parameters:
                  weight: 0.5
              - model: org/name
                parameters:
                  weight: 0.5
            tokenizer_source: union
            aim:
              omega: 0.4
              stats: stats.safetensors
            """);

    static final String[] PIECES = {":", "-", " ", "  ", "\n", "[", "]", "{", "}", ",", "'", "\"", "#", "&a", "*a", "!!python/object:os.system",
            "0", "-1", "1e400", ".nan", ".inf", "99999999999999999999", "null", "~", "yes", "\t", "?", "|", ">", "%", "@", "\\", "\u0000",
            "models:", "merge_method:", "parameters:", "weight:", "density:", "layer_range: [0, 99]", "filter:", "value:", "base_model:"};

    static String mutate(String s, Random r) {
        StringBuilder b = new StringBuilder(s);
        int edits = 1 + r.nextInt(4);
        for (int e = 0; e < edits && !b.isEmpty(); e++) {
            int at = r.nextInt(b.length() + 1);
            switch (r.nextInt(7)) {
                case 0 -> b.insert(at, PIECES[r.nextInt(PIECES.length)]);
                case 1 -> { if (at < b.length()) b.deleteCharAt(at); }
                case 2 -> b.setLength(at); // truncation
                case 3 -> { if (at < b.length()) b.setCharAt(at, PIECES[r.nextInt(PIECES.length)].charAt(0)); }
                case 4 -> { // duplicate or drop a line
                    List<String> lines = new ArrayList<>(Arrays.asList(b.toString().split("\n", -1)));
                    int i = r.nextInt(lines.size());
                    if (r.nextBoolean()) lines.add(i, lines.get(i)); else lines.remove(i);
                    b.setLength(0);
                    b.append(String.join("\n", lines));
                }
                case 5 -> { // re-indent a line
                    List<String> lines = new ArrayList<>(Arrays.asList(b.toString().split("\n", -1)));
                    int i = r.nextInt(lines.size());
                    lines.set(i, " ".repeat(r.nextInt(7)) + lines.get(i).stripLeading());
                    b.setLength(0);
                    b.append(String.join("\n", lines));
                }
                default -> { // a number replaced by a hostile one
                    String t = b.toString().replaceFirst("\\d+(\\.\\d+)?", PIECES[4 + r.nextInt(5)]);
                    b.setLength(0);
                    b.append(t);
                }
            }
        }
        return b.toString();
    }

    @Test
    void mutatedConfigsParseOrFailWithOneLineConfigException() {
        Random r = new Random(SEED);
        int failures = 0;
        for (int i = 0; i < TRIES; i++) {
            String text = mutate(VALID.get(i % VALID.size()), r);
            try {
                ConfigReader.parse(text, "fuzz.yml");
            } catch (ConfigException e) {
                failures++;
                String m = e.getMessage();
                assertTrue(m != null && m.startsWith("fuzz.yml"), "try " + i + ": message names the file: " + m);
                assertFalse(m.contains("\n") || m.contains("\r"), "try " + i + ": one line: " + m);
            } catch (Throwable t) {
                fail("try " + i + " (seed " + SEED + ") threw " + t + " for:\n" + text, t);
            }
        }
        assertTrue(failures > TRIES / 4, "the mutations do break configs (" + failures + " of " + TRIES + ")");
    }

    @Test
    void theUnmutatedConfigsAreValid() {
        for (String v : VALID) ConfigReader.parse(v, "valid.yml");
    }

    @Test
    void aliasBombsAndHugeDocumentsAreRefusedQuickly() {
        StringBuilder bomb = new StringBuilder("a: &a [x, x, x, x, x, x, x, x, x]\n");
        for (int i = 1; i < 12; i++) {
            bomb.append((char) ('a' + i)).append(": &").append((char) ('a' + i)).append(" [");
            for (int j = 0; j < 9; j++) bomb.append(j == 0 ? "" : ", ").append('*').append((char) ('a' + i - 1));
            bomb.append("]\n");
        }
        long t0 = System.nanoTime();
        assertThrows(ConfigException.class, () -> ConfigReader.parse(bomb.toString(), "bomb.yml"));
        assertTrue(System.nanoTime() - t0 < 5_000_000_000L, "refused quickly");
        String huge = "merge_method: linear\nmodels:\n" + "  - model: ./m\n".repeat(1_000_000);
        ConfigException e = assertThrows(ConfigException.class, () -> ConfigReader.parse(huge, "huge.yml"));
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
    }
}
