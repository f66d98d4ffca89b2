package dev.mergeforge;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The package layout of the README's "Layout" section holds: no cycle among the top-level packages under
 * dev.mergeforge (the dependencies of src/main/java, read from its imports and fully qualified
 * names with comments and string literals left out), and the backend interface package does not
 * reach into the implementations below it. A failure names each cycle with the files that make
 * its edges.
 */
class PackageCyclesTest {
    static final Path MAIN = Path.of("src/main/java/dev/mergeforge");
    /** Cycles left on purpose, as the sorted set of their packages, with the reason: none today. */
    static final Map<Set<String>, String> DELIBERATE = Map.of();

    private static final Pattern REF = Pattern.compile("\\bdev\\.mergeforge\\.([a-z][a-z0-9_]*)((?:\\.[a-z][a-z0-9_]*)*)\\.[A-Z]\\w*");

    @Test
    void noCycleAmongTopLevelPackages() {
        Map<String, Map<String, List<String>>> g = graph(MAIN);
        assertTrue(g.size() > 10, "read the packages of " + MAIN.toAbsolutePath() + ": " + g.keySet());
        List<String> found = new ArrayList<>();
        for (Set<String> scc : cycles(g)) if (!DELIBERATE.containsKey(scc)) found.add(describe(scc, g));
        assertEquals(List.of(), found, "package cycles among dev.mergeforge.*; break them (or list one in DELIBERATE with its reason)");
    }

    /** Files directly in dev.mergeforge.backend (the seam) name none of backend.java / .ffm / .cuda: the factory lives in backends. */
    @Test
    void theSeamDoesNotConstructItsImplementations() throws IOException {
        List<String> offending = new ArrayList<>();
        try (Stream<Path> s = Files.list(MAIN.resolve("backend"))) {
            for (Path p : s.filter(f -> f.toString().endsWith(".java")).sorted().toList()) {
                Matcher m = REF.matcher(code(read(p)));
                while (m.find()) {
                    if (m.group(1).equals("backend") && !m.group(2).isEmpty()) offending.add(p.getFileName() + " names " + m.group());
                }
            }
        }
        assertEquals(List.of(), offending, "the backend interface package must not depend on its implementations");
    }

    /** The detector itself: a three-package cycle is found and named with its files; commented and quoted names are no edges. */
    @Test
    void detectorNamesTheCycleItFinds(@TempDir Path dir) throws IOException {
        write(dir, "a/A.java", "package dev.mergeforge.a;\nimport dev.mergeforge.b.B;\nimport dev.mergeforge.e.E;\nclass A {}\n");
        write(dir, "b/B.java", "package dev.mergeforge.b;\nclass B { dev.mergeforge.c.sub.C c; }\n");
        write(dir, "c/sub/C.java", "package dev.mergeforge.c.sub;\nimport static dev.mergeforge.a.A.x;\nclass C {}\n");
        write(dir, "e/E.java", "package dev.mergeforge.e;\n// import dev.mergeforge.a.A;\n/* dev.mergeforge.a.A */\nclass E {\n"
                + "  String s = \"dev.mergeforge.a.A\"; char q = '\"'; String t = \"\"\"\n    dev.mergeforge.a.A \"\n    \"\"\";\n}\n");
        Map<String, Map<String, List<String>>> g = graph(dir);
        List<Set<String>> found = cycles(g);
        assertEquals(List.of(Set.of("a", "b", "c")), found, "the one cycle, and no edge e -> a from a comment or a string");
        String msg = describe(found.getFirst(), g);
        assertTrue(msg.startsWith("a -> b -> c -> a"), msg);
        assertTrue(msg.contains("b/B.java names dev.mergeforge.c.sub.C") && msg.contains("c/sub/C.java names dev.mergeforge.a.A"), msg);
    }

    // ---------------------------------------------------------------- the graph

    /** Top-level package -> the packages it names -> "file names reference" for each. */
    static Map<String, Map<String, List<String>>> graph(Path root) {
        Map<String, Map<String, List<String>>> g = new TreeMap<>();
        List<Path> files;
        try (Stream<Path> s = Files.walk(root)) {
            files = s.filter(p -> p.toString().endsWith(".java")).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        for (Path p : files) {
            Path rel = root.relativize(p);
            String from = rel.getNameCount() > 1 ? rel.getName(0).toString() : "(root)";
            Map<String, List<String>> out = g.computeIfAbsent(from, k -> new TreeMap<>());
            Matcher m = REF.matcher(code(read(p)));
            while (m.find()) {
                String to = m.group(1);
                String why = rel.toString().replace('\\', '/') + " names " + m.group();
                if (!to.equals(from) && !out.computeIfAbsent(to, k -> new ArrayList<>()).contains(why)) out.get(to).add(why);
            }
        }
        return g;
    }

    /** The strongly connected components of more than one package (Tarjan), each sorted, in order of their first package. */
    static List<Set<String>> cycles(Map<String, Map<String, List<String>>> g) {
        Map<String, Integer> index = new HashMap<>(), low = new HashMap<>();
        ArrayDeque<String> stack = new ArrayDeque<>();
        List<Set<String>> out = new ArrayList<>();
        for (String v : g.keySet()) if (!index.containsKey(v)) connect(v, g, index, low, stack, out);
        out.sort((x, y) -> x.iterator().next().compareTo(y.iterator().next()));
        return out;
    }

    private static void connect(String v, Map<String, Map<String, List<String>>> g, Map<String, Integer> index, Map<String, Integer> low,
                                ArrayDeque<String> stack, List<Set<String>> out) {
        index.put(v, index.size());
        low.put(v, index.get(v));
        stack.push(v);
        for (String w : g.getOrDefault(v, Map.of()).keySet()) {
            if (!index.containsKey(w)) {
                connect(w, g, index, low, stack, out);
                low.put(v, Math.min(low.get(v), low.get(w)));
            } else if (stack.contains(w)) {
                low.put(v, Math.min(low.get(v), index.get(w)));
            }
        }
        if (low.get(v).equals(index.get(v))) {
            Set<String> scc = new TreeSet<>();
            String w;
            do {
                w = stack.pop();
                scc.add(w);
            } while (!w.equals(v));
            if (scc.size() > 1) out.add(Collections.unmodifiableSet(scc));
        }
    }

    /** "a -> b -> a" (a shortest cycle through the component's first package), then the files behind each edge of the component. */
    static String describe(Set<String> scc, Map<String, Map<String, List<String>>> g) {
        String start = scc.iterator().next();
        Map<String, String> prev = new HashMap<>();
        ArrayDeque<String> queue = new ArrayDeque<>(List.of(start));
        String last = null;
        while (!queue.isEmpty() && last == null) {
            String v = queue.poll();
            for (String w : g.getOrDefault(v, Map.of()).keySet()) {
                if (!scc.contains(w)) continue;
                if (w.equals(start)) { last = v; break; }
                if (!prev.containsKey(w)) { prev.put(w, v); queue.add(w); }
            }
        }
        List<String> path = new ArrayList<>(List.of(start));
        for (String v = last; v != null && !v.equals(start); v = prev.get(v)) path.add(1, v);
        path.add(start);
        StringBuilder sb = new StringBuilder(String.join(" -> ", path)).append(" (cycle among ").append(scc).append("):");
        for (String a : scc) {
            for (var e : g.getOrDefault(a, Map.of()).entrySet()) {
                if (!scc.contains(e.getKey())) continue;
                List<String> why = e.getValue();
                sb.append("\n  ").append(a).append(" -> ").append(e.getKey()).append(": ")
                        .append(String.join("; ", why.subList(0, Math.min(3, why.size()))))
                        .append(why.size() > 3 ? "; and " + (why.size() - 3) + " more" : "");
            }
        }
        return sb.toString();
    }

    /** Java source with comments, string and text-block literals and char literals blanked out (line breaks kept). */
    static String code(String src) {
        StringBuilder out = new StringBuilder(src.length());
        int i = 0, n = src.length();
        while (i < n) {
            char c = src.charAt(i);
            if (src.startsWith("//", i)) {
                while (i < n && src.charAt(i) != '\n') i++;
            } else if (src.startsWith("/*", i)) {
                int end = src.indexOf("*/", i + 2);
                i = end < 0 ? n : end + 2;
                out.append(' ');
            } else if (src.startsWith("\"\"\"", i)) {
                int j = i + 3;
                while (j < n && !src.startsWith("\"\"\"", j)) j += src.charAt(j) == '\\' ? 2 : 1;
                i = Math.min(n, j + 3);
                out.append("\"\"");
            } else if (c == '"' || c == '\'') {
                int j = i + 1;
                while (j < n && src.charAt(j) != c && src.charAt(j) != '\n') j += src.charAt(j) == '\\' ? 2 : 1;
                i = Math.min(n, j + 1);
                out.append(c).append(c);
            } else {
                out.append(c);
                i++;
            }
        }
        return out.toString();
    }

    private static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private static void write(Path dir, String rel, String text) throws IOException {
        Path p = dir.resolve(rel);
        Files.createDirectories(p.getParent());
        Files.writeString(p, text);
    }
}
