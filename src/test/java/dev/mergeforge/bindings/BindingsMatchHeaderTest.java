package dev.mergeforge.bindings;

import dev.mergeforge.backend.ffm.NativeBackend;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.AddressLayout;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The checked-in bindings must match native/include/mergeops.h: the same functions, each with a
 * FunctionDescriptor of the same arity and C types, and the same #define constants. Parses the
 * header's prototypes here (a deliberately small C subset: the header uses only stdint scalars,
 * float, double, void and pointers) and compares with what MergeOps exposes.
 */
class BindingsMatchHeaderTest {
    private static final Path HEADER = Path.of("native/include/mergeops.h");

    /** A parsed prototype: return type and parameter types, as C spells them. */
    record Proto(String ret, List<String> params) {}

    @BeforeAll
    static void library() {
        // descriptors live in holder classes that also resolve the symbol, so the library must be loaded
        assumeTrue(NativeBackend.isAvailable(), () -> "native backend not available (" + NativeBackend.unavailableReason() + ")");
    }

    static String stripComments(String s) {
        return s.replaceAll("(?s)/\\*.*?\\*/", " ").replaceAll("//[^\n]*", " ");
    }

    static Map<String, Proto> prototypes(String header) {
        Map<String, Proto> out = new LinkedHashMap<>();
        Matcher m = Pattern.compile("(?m)^\\s*([A-Za-z_][\\w\\s]*?[\\s*]+)([A-Za-z_]\\w*)\\s*\\(([^)]*)\\)\\s*;").matcher(stripComments(header));
        while (m.find()) {
            List<String> params = new ArrayList<>();
            String args = m.group(3).trim();
            if (!args.equals("void") && !args.isEmpty()) {
                for (String a : args.split(",")) {
                    // drop the parameter name: the last identifier
                    params.add(a.trim().replaceAll("[A-Za-z_]\\w*$", "").trim());
                }
            }
            out.put(m.group(2), new Proto(m.group(1).trim(), params));
        }
        return out;
    }

    /** The layout jextract gives a C type on x86-64 Linux (LP64). */
    static Optional<MemoryLayout> layout(String ctype) {
        String t = ctype.replace("const", " ").replaceAll("\\s+", " ").trim();
        if (t.contains("*")) return Optional.of(ValueLayout.ADDRESS);
        MemoryLayout l = switch (t) {
            case "void" -> null;
            case "int32_t", "int" -> ValueLayout.JAVA_INT;
            case "int64_t", "long" -> ValueLayout.JAVA_LONG;
            case "float" -> ValueLayout.JAVA_FLOAT;
            case "double" -> ValueLayout.JAVA_DOUBLE;
            default -> throw new AssertionError("header uses a C type this test does not know: '" + ctype + "'");
        };
        return Optional.ofNullable(l);
    }

    /** Compares layouts by carrier, size and (for addresses) kind, ignoring names and target layouts. */
    static String describe(MemoryLayout l) {
        if (l instanceof AddressLayout) return "pointer";
        return ((ValueLayout) l).carrier().getSimpleName() + l.byteSize();
    }

    @Test
    void everyPrototypeHasAMatchingDescriptor() throws Exception {
        Map<String, Proto> protos = prototypes(Files.readString(HEADER));
        assertFalse(protos.isEmpty(), "no prototypes parsed from " + HEADER);
        for (Map.Entry<String, Proto> e : protos.entrySet()) {
            String name = e.getKey();
            Method m = MergeOps.class.getMethod(name + "$descriptor");
            FunctionDescriptor d = (FunctionDescriptor) m.invoke(null);
            Proto p = e.getValue();
            assertEquals(layout(p.ret()).map(BindingsMatchHeaderTest::describe), d.returnLayout().map(BindingsMatchHeaderTest::describe), name + " return type");
            assertEquals(p.params().size(), d.argumentLayouts().size(), name + " arity");
            for (int i = 0; i < p.params().size(); i++) {
                assertEquals(describe(layout(p.params().get(i)).orElseThrow()), describe(d.argumentLayouts().get(i)), name + " parameter " + i + " (" + p.params().get(i) + ")");
            }
            // the wrapper method has the same arity as the prototype
            long wrappers = java.util.Arrays.stream(MergeOps.class.getMethods())
                    .filter(w -> w.getName().equals(name) && w.getParameterCount() == p.params().size()).count();
            assertEquals(1, wrappers, name + " has one wrapper of arity " + p.params().size());
        }
    }

    @Test
    void noBindingWithoutAPrototype() throws IOException {
        TreeSet<String> header = new TreeSet<>(prototypes(Files.readString(HEADER)).keySet());
        TreeSet<String> bound = new TreeSet<>();
        for (Method m : MergeOps.class.getDeclaredMethods()) {
            if (Modifier.isPublic(m.getModifiers()) && m.getName().endsWith("$descriptor")) bound.add(m.getName().replace("$descriptor", ""));
        }
        assertEquals(header, bound, "functions in " + HEADER + " vs bindings; regenerate with `make bindings`");
    }

    @Test
    void constantsMatchTheDefines() throws Exception {
        Matcher m = Pattern.compile("(?m)^#define\\s+(MO_\\w+)\\s+\\(?(-?\\d+)\\)?\\s*$").matcher(Files.readString(HEADER));
        int seen = 0;
        while (m.find()) {
            Method getter = MergeOps.class.getMethod(m.group(1));
            assertEquals(Integer.parseInt(m.group(2)), getter.invoke(null), m.group(1));
            seen++;
        }
        assertFalse(seen == 0, "no #define constants parsed from " + HEADER);
    }
}
