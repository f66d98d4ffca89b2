package dev.mergeforge.backend.cuda;

import dev.mergeforge.backend.Backend;
import org.junit.jupiter.api.Test;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Tiles live on the GPU between ops, so an op that runs on the host must first bring its tiles'
 * values back (and forget the device copies of what it writes). An op inherited from JavaBackend
 * or a Backend default would skip that and read stale host memory: every Backend method must be
 * declared by CudaBackend (device ops) or HostFallbacks (host ops, each through onHost).
 */
class CudaBackendCoverageTest {
    @Test
    void everyBackendMethodIsDeclaredByCudaBackendOrItsHostFallbacks() throws Exception {
        List<String> inherited = new ArrayList<>();
        int checked = 0;
        for (Method m : Backend.class.getMethods()) {
            if (Modifier.isStatic(m.getModifiers())) continue;
            Class<?> owner = CudaBackend.class.getMethod(m.getName(), m.getParameterTypes()).getDeclaringClass();
            if (owner != CudaBackend.class && owner != HostFallbacks.class) inherited.add(m.getName() + " from " + owner.getSimpleName());
            checked++;
        }
        assertEquals(List.of(), inherited, "CudaBackend inherits these ops without bringing tiles to the host; override them in CudaBackend or HostFallbacks");
        assertTrue(checked > 30, "only " + checked + " Backend methods seen");
    }

    @Test
    void hostFallbacksDeclaresOnlyWrappedOps() throws Exception {
        // every public op of HostFallbacks is one JavaBackend implements (nothing new sneaks in unwrapped)
        Set<String> skip = Set.of("with", "onHost");
        for (Method m : HostFallbacks.class.getDeclaredMethods()) {
            if (skip.contains(m.getName()) || m.isSynthetic()) continue;
            assertTrue(Modifier.isSynchronized(m.getModifiers()), m.getName() + " must hold the backend's lock like every CudaBackend op");
            Backend.class.getMethod(m.getName(), m.getParameterTypes());
        }
    }
}
