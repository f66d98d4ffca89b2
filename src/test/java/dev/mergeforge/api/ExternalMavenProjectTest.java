package dev.mergeforge.api;

import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A separate Maven project that depends on the installed mergeforge artifact compiles against the
 * api package and merges with it, byte for byte as the CLI. The artifact (this build's classes and
 * pom) is installed into a temporary local repository whose other artifacts link to ~/.m2, so the
 * run is offline and never touches the shared repository's dev/mergeforge.
 */
class ExternalMavenProjectTest {
    @TempDir Path tmp;

    /** Removes the links into ~/.m2 (only the links) before JUnit deletes the temporary folder. */
    @AfterEach
    void unlink() throws IOException {
        for (Path dir : List.of(tmp.resolve("repo"), tmp.resolve("repo").resolve("dev"))) {
            if (!Files.isDirectory(dir)) continue;
            try (Stream<Path> s = Files.list(dir)) {
                for (Path p : s.toList()) if (Files.isSymbolicLink(p)) Files.delete(p);
            }
        }
    }

    @Test
    void aConsumerProjectMergesThroughTheInstalledArtifact() throws Exception {
        Path mvn = onPath("mvn");
        assumeTrue(mvn != null, "mvn is not on PATH: the consumer project cannot be built");
        Path m2 = Path.of(System.getProperty("user.home"), ".m2", "repository");
        assumeTrue(Files.isDirectory(m2.resolve("org/apache/maven/plugins/maven-install-plugin/3.1.4")),
                "the local Maven repository lacks maven-install-plugin 3.1.4: the offline build cannot run");
        Path repo = linkedRepo(m2, tmp.resolve("repo"));
        Path jar = jarOf(Path.of("target/classes"), tmp.resolve("mergeforge.jar"));
        run(tmp, mvn.toString(), "-B", "-q", "-o", "-Dmaven.repo.local=" + repo, "org.apache.maven.plugins:maven-install-plugin:3.1.4:install-file",
                "-Dfile=" + jar, "-DpomFile=" + Path.of("pom.xml").toAbsolutePath());

        Path project = tmp.resolve("consumer");
        Files.createDirectories(project.resolve("src/main/java/consumer"));
        Files.writeString(project.resolve("pom.xml"), POM);
        Files.writeString(project.resolve("src/main/java/consumer/Consumer.java"), CONSUMER);
        run(project, mvn.toString(), "-B", "-q", "-o", "-Dmaven.repo.local=" + repo, "compile", "dependency:build-classpath",
                "-Dmdep.outputFile=cp.txt");

        RandomModels.Family fam = MergeFixtures.family(Arch.LLAMA, DType.BF16, 2, 1, tmp.resolve("models"));
        Path config = MergeFixtures.linear(tmp, "linear.yml", fam.base(), fam.fineTunes().get(0), fam.fineTunes().get(1));
        Path viaConsumer = tmp.resolve("consumer-out"), viaCli = tmp.resolve("cli-out");
        String cp = project.resolve("target/classes") + File.pathSeparator + Files.readString(project.resolve("cp.txt")).strip();
        String out = run(project, Path.of(System.getProperty("java.home"), "bin", "java").toString(), "--enable-native-access=ALL-UNNAMED",
                "-cp", cp, "consumer.Consumer", config.toString(), viaConsumer.toString());
        assertTrue(out.contains("merged tensors=") && out.contains("events="), out);

        assertEquals(0, MergeFixtures.cli("merge", config.toString(), viaCli.toString(), "--backend", "java", "-q").exit());
        assertArrayEquals(Files.readAllBytes(viaCli.resolve("model.safetensors")), Files.readAllBytes(viaConsumer.resolve("model.safetensors")));
    }

    private static final String POM = """
            <project xmlns="http://maven.apache.org/POM/4.0.0">
              <modelVersion>4.0.0</modelVersion>
              <groupId>example</groupId>
              <artifactId>consumer</artifactId>
              <version>1</version>
              <properties>
                <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
                <maven.compiler.release>22</maven.compiler.release>
              </properties>
              <dependencies>
                <dependency><groupId>dev.mergeforge</groupId><artifactId>mergeforge</artifactId><version>0.1.0-SNAPSHOT</version></dependency>
              </dependencies>
              <build>
                <plugins>
                  <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-resources-plugin</artifactId><version>3.3.1</version></plugin>
                  <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-compiler-plugin</artifactId><version>3.13.0</version></plugin>
                  <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId><version>3.8.1</version></plugin>
                </plugins>
              </build>
            </project>
            """;

    /** A JVM caller: merges the config it is given with the Java backend and prints what the API returned. */
    private static final String CONSUMER = """
            package consumer;

            import dev.mergeforge.api.BackendChoice;
            import dev.mergeforge.api.CancellationToken;
            import dev.mergeforge.api.Event;
            import dev.mergeforge.api.MergeRequest;
            import dev.mergeforge.api.MergeResult;
            import dev.mergeforge.api.Mergeforge;
            import dev.mergeforge.api.MergeforgeError;
            import java.nio.file.Path;
            import java.util.concurrent.atomic.AtomicInteger;

            public class Consumer {
                public static void main(String[] args) {
                    AtomicInteger events = new AtomicInteger();
                    MergeRequest req = MergeRequest.of(Path.of(args[0]), Path.of(args[1])).withBackend(new BackendChoice("java", "cpu", 0));
                    try {
                        MergeResult r = Mergeforge.merge(req, e -> events.incrementAndGet(), new CancellationToken());
                        System.out.println("merged tensors=" + r.tensors() + " events=" + events.get() + " output=" + r.output());
                    } catch (MergeforgeError e) {
                        System.err.println("error: " + e.getMessage());
                        System.exit(e.exitCode());
                    }
                }
            }
            """;

    /** A local repository whose top-level folders link into {@code m2}, except dev/mergeforge, which stays private to this test. */
    private static Path linkedRepo(Path m2, Path repo) throws IOException {
        Files.createDirectories(repo.resolve("dev"));
        try (Stream<Path> top = Files.list(m2)) {
            for (Path p : top.toList()) {
                if (!p.getFileName().toString().equals("dev")) Files.createSymbolicLink(repo.resolve(p.getFileName()), p);
            }
        }
        if (Files.isDirectory(m2.resolve("dev"))) {
            try (Stream<Path> dev = Files.list(m2.resolve("dev"))) {
                for (Path p : dev.toList()) {
                    if (!p.getFileName().toString().equals("mergeforge")) Files.createSymbolicLink(repo.resolve("dev").resolve(p.getFileName()), p);
                }
            }
        }
        return repo;
    }

    /** This build's classes as a jar (what `mvn package` would install, minus the manifest). */
    private static Path jarOf(Path classes, Path jar) throws IOException {
        try (OutputStream os = Files.newOutputStream(jar); JarOutputStream j = new JarOutputStream(os); Stream<Path> all = Files.walk(classes)) {
            for (Path p : all.filter(Files::isRegularFile).sorted().toList()) {
                j.putNextEntry(new JarEntry(classes.relativize(p).toString().replace(File.separatorChar, '/')));
                Files.copy(p, j);
                j.closeEntry();
            }
        }
        return jar;
    }

    private static String run(Path dir, String... cmd) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true);
        pb.environment().put("JAVA_HOME", System.getProperty("java.home"));
        Process p = pb.start();
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readAllBytes();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "timed out: " + String.join(" ", cmd));
        String text = new String(out, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), String.join(" ", cmd) + " failed:\n" + text);
        return text;
    }

    private static Path onPath(String exe) {
        List<String> dirs = new ArrayList<>(List.of(System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)));
        for (String d : dirs) {
            Path p = Path.of(d, exe);
            if (!d.isEmpty() && Files.isExecutable(p)) return p;
        }
        return null;
    }
}
