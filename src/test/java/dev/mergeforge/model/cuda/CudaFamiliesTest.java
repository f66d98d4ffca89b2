package dev.mergeforge.model.cuda;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.model.ArchFixtures;
import dev.mergeforge.model.ModelConfig;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The CUDA forward pass covers the Llama layout only; a request for another family is a one-line error (no GPU needed). */
class CudaFamiliesTest {
    static String[] families() { return ArchFixtures.FAMILIES; }

    @ParameterizedTest
    @MethodSource("families")
    void otherFamiliesAreRefusedInOneLine(String family) throws IOException {
        ModelConfig c = ModelConfig.fromJson(new ObjectMapper().readTree(ArchFixtures.dir(family).resolve("config.json").toFile()), family);
        if (List.of("llama3", "mistral", "qwen2").contains(family)) {
            assertDoesNotThrow(() -> CudaForward.checkSupported(c, family));
            return;
        }
        ConfigException e = assertThrows(ConfigException.class, () -> CudaForward.checkSupported(c, "m"));
        assertTrue(e.getMessage().equals("m: the CUDA forward pass covers llama, mistral, qwen2, not " + c.arch().family()
                + "; use --device cpu"), e.getMessage());
    }
}
