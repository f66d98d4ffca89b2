package dev.mergeforge.run;

import dev.mergeforge.cli.Main;
import dev.mergeforge.io.SafetensorsFile;
import dev.mergeforge.model.Zoo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * On the trained zoo: regmean with one Gram shared by every model is the plain average
 * ((ΣG̃)⁻¹·G̃·ΣWᵢᵀ = ΣWᵢᵀ/N), so it must reproduce linear.
 */
class ZooRegMeanTest {
    @TempDir Path tmp;

    static float[] floats(SafetensorsFile f, String n) {
        return f.tensor(n).data().toArray(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN));
    }

    @Test
    void sharedGramReproducesLinear() throws Exception {
        Path zoo = Zoo.dir();
        Path gram = tmp.resolve("dup.gram");
        int rc = Main.commandLine().execute("calibrate", zoo.resolve("ft_dup").toString(), "--stat", "gram", "--data",
                zoo.resolve("data/general_calib_blocks.jsonl").toString(), "--samples", "4", "--no-cache", "--threads", "2", "-o", gram.toString());
        assertEquals(0, rc);
        String models = "models:\n" + String.join("", java.util.List.of("ft_dup", "ft_swap", "ft_mirror").stream()
                .map(m -> "  - model: " + zoo.resolve(m) + "\n    parameters: {weight: 1.0}\n").toList()) + "dtype: float32\n";
        Files.writeString(tmp.resolve("lin.yaml"), "merge_method: linear\n" + models);
        Files.writeString(tmp.resolve("rm.yaml"), "merge_method: regmean\n" + models + "calibration: {stats: " + gram + "}\n");
        assertEquals(0, Main.commandLine().execute("merge", tmp.resolve("lin.yaml").toString(), tmp.resolve("lin").toString(), "-q", "--backend", "java"));
        assertEquals(0, Main.commandLine().execute("merge", tmp.resolve("rm.yaml").toString(), tmp.resolve("rm").toString(), "-q", "--backend", "java"));
        try (SafetensorsFile lin = SafetensorsFile.open(tmp.resolve("lin/model.safetensors"));
             SafetensorsFile rm = SafetensorsFile.open(tmp.resolve("rm/model.safetensors"));
             SafetensorsFile g = SafetensorsFile.open(gram)) {
            assertTrue(g.contains("model.layers.3.mlp.down_proj.weight") && g.contains("lm_head.weight"));
            for (String n : lin.names()) {
                float[] x = floats(lin, n), y = floats(rm, n);
                for (int i = 0; i < x.length; i++) assertEquals(x[i], y[i], 1e-6 * (1 + Math.abs(x[i])), n + "[" + i + "]");
            }
        }
    }
}
