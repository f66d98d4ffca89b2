package dev.mergeforge.merge.methods;

import dev.mergeforge.merge.MethodSpec;

import java.util.List;

/** Every method's spec, in the order `mergeforge methods` lists them. */
public final class Methods {
    private Methods() {}

    public static List<MethodSpec> all() {
        return List.of(Linear.SPEC, Fisher.SPEC, RegMean.SPEC);
    }
}
