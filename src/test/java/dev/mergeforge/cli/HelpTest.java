package dev.mergeforge.cli;

import dev.mergeforge.run.MergeFixtures;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HelpTest {
    @Test
    void everyCommandAnswersHelpWithItsUsage() {
        MergeFixtures.Run top = MergeFixtures.cli("--help");
        assertEquals(0, top.exit());
        for (String cmd : Main.commandLine().getSubcommands().keySet()) {
            MergeFixtures.Run r = MergeFixtures.cli(cmd, "--help");
            assertEquals(0, r.exit(), cmd + ": " + r.err());
            assertTrue(r.out().startsWith("Usage: mergeforge " + cmd), cmd + ": " + r.out());
            assertTrue(top.out().contains(cmd), "top-level help lists " + cmd);
        }
    }

    @Test
    void methodsListsEveryRegisteredMethodWithItsParameters() {
        MergeFixtures.Run r = MergeFixtures.cli("methods");
        assertEquals(0, r.exit());
        for (var m : dev.mergeforge.merge.MethodRegistry.all()) {
            assertTrue(r.out().contains(m.name() + " — "), m.name());
            for (var p : m.global()) assertTrue(r.out().contains("parameters." + p.name()), m.name() + "." + p.name());
        }
        assertTrue(r.out().contains("models[].parameters.density (default 1)"), r.out());
    }
}
