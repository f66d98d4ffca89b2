package dev.mergeforge;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The semantics we promise live in the repository's docs/, and the code cites those: no source,
 * kernel or doc cites METHODS.md (a file outside the repository), and every docs page a source
 * file names exists.
 */
class DocCitationsTest {
    static final List<String> ROOTS = List.of("src", "kernels", "native", "bench/src", "docs");
    /** A repository path docs/x.md (not a URL's .../docs/x.md). */
    static final Pattern DOC = Pattern.compile("(?<![/\\w])docs/([A-Za-z0-9_-]+\\.md)");

    static List<Path> files() throws IOException {
        List<Path> out = new ArrayList<>();
        for (String root : ROOTS) {
            Path r = Path.of(root);
            if (!Files.isDirectory(r)) continue;
            try (Stream<Path> s = Files.walk(r)) {
                s.filter(Files::isRegularFile)
                        .filter(p -> p.toString().matches(".*\\.(java|c|h|cu|cuh|cpp|md)$"))
                        .filter(p -> !p.endsWith("DocCitationsTest.java"))   // names what it looks for
                        .forEach(out::add);
            }
        }
        return out;
    }

    static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Test
    void nothingCitesMethodsMd() throws IOException {
        List<Path> files = files();
        assertTrue(files.size() > 100, "found the sources: " + files.size());
        List<String> citing = files.stream().filter(p -> read(p).contains("METHODS.md")).map(Path::toString).toList();
        assertEquals(List.of(), citing, "cite the docs/ file that holds the semantics instead of METHODS.md");
    }

    @Test
    void everyCitedDocExists() throws IOException {
        List<String> missing = new ArrayList<>();
        for (Path p : files()) {
            if (p.toString().endsWith(".md")) continue;   // docs link each other relatively
            Matcher m = DOC.matcher(read(p));
            while (m.find()) if (!Files.isRegularFile(Path.of("docs", m.group(1)))) missing.add(p + " cites docs/" + m.group(1));
        }
        assertEquals(List.of(), missing, "cited docs that do not exist");
    }
}
