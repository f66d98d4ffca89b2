package dev.mergeforge.backends;

import dev.mergeforge.backend.Backend;
import dev.mergeforge.backend.java.JavaBackend;
import dev.mergeforge.errors.ConfigException;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Supplier;

/**
 * Finds and ranks the backends explicitly. "auto" takes the fastest available one and the caller
 * logs which; a backend asked for by name and unavailable is an error, never a silent fallback.
 */
public final class Backends {
    /** One backend kind: how to tell whether it can run here and how to make it. */
    public record Kind(String name, int rank, Supplier<Optional<String>> unavailableReason, Factory factory) {}

    @FunctionalInterface
    public interface Factory { Backend create(int threads, int device); }

    private static final List<Kind> KINDS = new ArrayList<>();

    static {
        register(new Kind("java", 0, Optional::empty, (threads, device) -> new JavaBackend(threads)));
        register(new Kind("native", 10, () -> Optional.ofNullable(dev.mergeforge.backend.ffm.NativeBackend.unavailableReason()),
                (threads, device) -> new dev.mergeforge.backend.ffm.NativeBackend(threads)));
        register(new Kind("cuda", 20, dev.mergeforge.backend.cuda.CudaBackend::unavailableReason,
                (threads, device) -> new dev.mergeforge.backend.cuda.CudaBackend(device)));
    }

    private Backends() {}

    /** Adds a backend kind (higher rank = preferred by "auto"). */
    public static synchronized void register(Kind k) {
        KINDS.removeIf(x -> x.name().equals(k.name()));
        KINDS.add(k);
        KINDS.sort((a, b) -> Integer.compare(b.rank(), a.rank()));
    }

    /** Removes a backend kind added by {@link #register} (tests that add a stand-in take it out again). */
    public static synchronized void unregister(String name) { KINDS.removeIf(x -> x.name().equals(name)); }

    public static synchronized List<Kind> kinds() { return List.copyOf(KINDS); }

    /** Creates the named backend ("auto" for the best available). */
    public static Backend create(String name, int threads, int device) {
        for (Kind k : kinds()) {
            if (name.equals("auto")) {
                if (k.unavailableReason().get().isEmpty()) return k.factory().create(threads, device);
                continue;
            }
            if (!k.name().equals(name)) continue;
            Optional<String> why = k.unavailableReason().get();
            if (why.isPresent()) {
                throw new ConfigException("--backend " + name + " is unavailable: " + why.get() + "; choose another with --backend "
                        + String.join("|", kinds().stream().map(Kind::name).filter(n -> !n.equals(name)).toList()));
            }
            return k.factory().create(threads, device);
        }
        throw new ConfigException("--backend: unknown backend '" + name + "'; valid: auto, "
                + String.join(", ", kinds().stream().map(Kind::name).toList()));
    }
}
