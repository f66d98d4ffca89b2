package dev.mergeforge.cli;

import dev.mergeforge.merge.MethodRegistry;
import dev.mergeforge.merge.MethodSpec;
import dev.mergeforge.merge.ParamSpec;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.PrintWriter;
import java.util.concurrent.Callable;

/** `mergeforge methods`: every method with its parameters, defaults and paper. */
@Command(mixinStandardHelpOptions = true, name = "methods", description = "List every merge method with its parameters, defaults and paper link.")
final class MethodsCommand implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        for (MethodSpec m : MethodRegistry.all()) {
            out.printf("%s — %s%n  base model: %s; models: %s%n  paper: %s%n", m.name(), m.summary(),
                    m.base().name().toLowerCase(java.util.Locale.ROOT),
                    m.maxModels() == Integer.MAX_VALUE ? m.minModels() + "+" : m.minModels() + "-" + m.maxModels(), m.paper());
            for (ParamSpec p : m.global()) out.printf("  parameters.%s (%s) — %s%n", p.name(), describe(p), p.doc());
            for (ParamSpec p : m.perModel()) out.printf("  models[].parameters.%s (%s) — %s%n", p.name(), describe(p), p.doc());
            out.println();
        }
        out.flush();
        return 0;
    }

    private static String describe(ParamSpec p) {
        if (p.required()) return "required";
        // whole numbers print as integers (max_iter 10, not 10.0)
        if (p.dflt() instanceof Double d && d == Math.rint(d) && Math.abs(d) < 1e15) return "default " + (long) (double) d;
        return "default " + p.dflt();
    }
}
