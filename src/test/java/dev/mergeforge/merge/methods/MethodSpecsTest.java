package dev.mergeforge.merge.methods;

import dev.mergeforge.merge.MethodRegistry;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Parameter names, defaults and global/per-model placement as read from mergekit 0.1.x
 * (merge_methods/*.py: parameters() is global, tensor_parameters() per model; easy_define turns
 * scalar arguments into global and list arguments into per-model parameters).
 */
class MethodSpecsTest {

    static String describe(List<ParamSpec> ps) {
        return ps.stream().map(p -> p.name() + "=" + p.dflt()).sorted().collect(Collectors.joining(","));
    }

    @Test
    void everyDataFreeMethodIsRegisteredWithMergekitsParameters() {
        Map<String, String[]> want = new LinkedHashMap<>();
        String gta = "int8_mask=false,lambda=1.0,normalize=%s,rescale=%s";
        want.put("linear", new String[] {"normalize=true", "weight=null"});
        want.put("task_arithmetic", new String[] {gta.formatted(false, false), "density=1.0,weight=null"});
        want.put("ties", new String[] {gta.formatted(true, false), "density=1.0,weight=null"});
        want.put("dare_linear", new String[] {gta.formatted(false, true), "density=1.0,weight=null"});
        want.put("dare_ties", new String[] {gta.formatted(false, true), "density=1.0,weight=null"});
        want.put("breadcrumbs", new String[] {gta.formatted(false, false), "density=1.0,gamma=0.01,weight=null"});
        want.put("breadcrumbs_ties", new String[] {gta.formatted(false, false), "density=1.0,gamma=0.01,weight=null"});
        want.put("della", new String[] {gta.formatted(true, true), "density=1.0,epsilon=0.15,weight=null"});
        want.put("della_linear", new String[] {gta.formatted(false, true), "density=1.0,epsilon=0.15,weight=null"});
        want.put("slerp", new String[] {"t=null", ""});
        want.put("nuslerp", new String[] {"nuslerp_flatten=true,nuslerp_row_wise=false", "weight=null"});
        want.put("multislerp", new String[] {"eps=1.0E-8,normalize_weights=true", "weight=null"});
        want.put("karcher", new String[] {"max_iter=10.0,tol=1.0E-5", ""});
        want.put("model_stock", new String[] {"filter_wise=false", ""});
        want.put("nearswap", new String[] {"t=null", ""});
        want.put("sce", new String[] {"int8_mask=false,select_topk=1.0", ""});
        want.put("passthrough", new String[] {"", "scale=1.0"});
        want.put("arcee_fusion", new String[] {"", ""});
        want.put("ram", new String[] {"epsilon=1.0E-5", ""});
        want.put("ramplus_tl", new String[] {"alpha=0.2,epsilon=1.0E-5,r=0.1", ""});
        for (var e : want.entrySet()) {
            MethodSpec s = MethodRegistry.get(e.getKey());
            assertEquals(e.getValue()[0], describe(s.global()), e.getKey() + " global parameters");
            assertEquals(e.getValue()[1], describe(s.perModel()), e.getKey() + " per-model parameters");
        }
    }

    @Test
    void densityIsInTheHalfOpenUnitInterval() {
        ParamSpec d = Specs.DENSITY;
        assertNotNull(d.check(0.0));
        assertNull(d.check(1e-9));
        assertNull(d.check(1.0));
        assertNotNull(d.check(1.01));
        assertNull(DareRescale.SPEC.check(true));
        assertNull(DareRescale.SPEC.check("density"));
    }
}
