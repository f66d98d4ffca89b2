package dev.mergeforge.merge.methods;

import dev.mergeforge.merge.MethodSpec;

import java.util.List;

/** Every method's spec, in the order `mergeforge methods` lists them. */
public final class Methods {
    private Methods() {}

    public static List<MethodSpec> all() {
        return List.of(Linear.SPEC, TaskArithmetic.SPEC, Ties.SPEC, DareLinear.SPEC, DareTies.SPEC,
                Breadcrumbs.SPEC, BreadcrumbsTies.SPEC, Della.SPEC, DellaLinear.SPEC,
                Slerp.SPEC, NuSlerp.SPEC, MultiSlerp.SPEC, Karcher.SPEC, ModelStock.SPEC, Nearswap.SPEC,
                Sce.SPEC, Passthrough.SPEC, ArceeFusion.SPEC, Ram.SPEC, RamPlusTl.SPEC, Fisher.SPEC, RegMean.SPEC);
    }
}
