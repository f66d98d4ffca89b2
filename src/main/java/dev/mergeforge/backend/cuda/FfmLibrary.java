package dev.mergeforge.backend.cuda;

import dev.mergeforge.errors.MergeforgeException;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.Optional;
import java.util.function.Function;
import java.util.function.IntFunction;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * What the FFM bindings of the CUDA libraries ({@code cublas.Cublas}, {@code cusolver.Cusolver})
 * share: open the first of several sonames the machine has with {@link SymbolLookup#libraryLookup}
 * (in the global arena: a library stays loaded for the life of the JVM), bind its functions once,
 * on first use, or else keep a one-line reason naming the fix; create handles; and turn a non-zero
 * status into a {@link MergeforgeException} naming the call and the status.
 *
 * <p>Public only because each binding lives in its own package; nothing else needs it.
 *
 * @param <F> the binding's downcall handles
 */
public final class FfmLibrary<F> {
    /** Looks up the opened library's symbols; a missing one throws {@link IllegalArgumentException}. */
    public record Symbols(SymbolLookup lookup) {
        /** A downcall handle for {@code name}, a function that takes {@code args} and, as every call of these libraries, returns a status int. */
        public MethodHandle downcall(String name, MemoryLayout... args) {
            MemorySegment symbol = lookup.find(name).orElseThrow(() -> new IllegalArgumentException("symbol " + name + " missing"));
            return Linker.nativeLinker().downcallHandle(symbol, FunctionDescriptor.of(JAVA_INT, args));
        }
    }

    /** A downcall that returns the library's status code. */
    @FunctionalInterface
    public interface Call { int run() throws Throwable; }

    /** The library that was bound and its functions, or why it could not be bound. */
    private record Binding<F>(String library, F functions, String error) { }

    private final String name;
    private final String[] sonames;
    private final Function<Symbols, F> bind;
    private final IntFunction<String> statusName;
    private Binding<F> binding;

    /**
     * @param name       how messages call the library ("cuBLAS")
     * @param sonames    tried in order
     * @param bind       the downcall handles from an opened library
     * @param statusName a status code's name and what to check
     */
    public FfmLibrary(String name, String[] sonames, Function<Symbols, F> bind, IntFunction<String> statusName) {
        this.name = name;
        this.sonames = sonames.clone();
        this.bind = bind;
        this.statusName = statusName;
    }

    /** The bound functions; throws with {@link #unavailableReason()} when the library is absent. */
    public F functions() {
        Binding<F> b = binding();
        if (b.error() != null) throw new MergeforgeException(name + " is unavailable: " + b.error());
        return b.functions();
    }

    /** Empty when a library was found and bound, else a one-line reason naming the fix. Never throws. */
    public Optional<String> unavailableReason() { return Optional.ofNullable(binding().error()); }

    /** The soname that was bound, if any. */
    public Optional<String> libraryName() { return Optional.ofNullable(binding().library()); }

    private synchronized Binding<F> binding() {
        if (binding == null) binding = open();
        return binding;
    }

    private Binding<F> open() {
        for (String lib : sonames) {
            SymbolLookup lookup;
            try {
                lookup = SymbolLookup.libraryLookup(lib, Arena.global());
            } catch (IllegalArgumentException e) {
                continue;
            }
            try {
                return new Binding<>(lib, bind.apply(new Symbols(lookup)), null);
            } catch (RuntimeException e) {
                return new Binding<>(null, null, lib + " is there but cannot be bound: " + e.getMessage());
            }
        }
        return new Binding<>(null, null, "no " + name + " library (" + String.join(" or ", sonames)
                + " not found): install the CUDA toolkit's " + name + " or add its directory to LD_LIBRARY_PATH");
    }

    /**
     * Runs {@code c} and checks its status; {@code what} names the call in the message. A checked
     * throwable (a downcall declares one but never throws it) becomes a {@link MergeforgeException}.
     */
    public void call(String what, Call c) {
        int status;
        try {
            status = c.run();
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new MergeforgeException(what + " failed: " + t, t);
        }
        if (status != 0) throw new MergeforgeException(what + " returned " + name + " status " + status + " (" + statusName.apply(status) + ")");
    }

    /**
     * A new handle from {@code create(&handle)}. The slot lives only for the call: a handle read
     * from a thread-confined arena could not be destroyed from another thread.
     */
    public MemorySegment createHandle(String what, MethodHandle create) {
        try (Arena call = Arena.ofConfined()) {
            MemorySegment slot = call.allocate(ADDRESS);
            call(what, () -> (int) create.invokeExact(slot));
            return slot.get(ADDRESS, 0);
        }
    }
}
