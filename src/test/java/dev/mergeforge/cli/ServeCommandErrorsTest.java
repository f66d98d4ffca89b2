package dev.mergeforge.cli;

import dev.mergeforge.run.MergeFixtures;
import org.junit.jupiter.api.Test;

import java.net.InetAddress;
import java.net.ServerSocket;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** `mergeforge serve`'s option mistakes and a taken port: one line and an exit code, before any request is read. */
class ServeCommandErrorsTest {
    private static void fails(int exit, String expected, String... args) {
        MergeFixtures.Run r = MergeFixtures.cli(args);
        assertEquals(exit, r.exit(), r.err());
        assertTrue(r.err().startsWith("error: ") && r.err().contains(expected) && r.err().strip().lines().count() == 1, r.err());
    }

    @Test
    void badOptionsAreUsageErrors() {
        fails(2, "--max-jobs 0", "serve", "--max-jobs", "0");
        fails(2, "--token: at least 16 characters", "serve", "--http", "0", "--token", "short");
        fails(2, "--http 70000", "serve", "--http", "70000");
        fails(2, "--memory-budget lots", "serve", "--memory-budget", "lots");
    }

    @Test
    void aTakenPortIsNamed() throws Exception {
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            fails(1, "cannot listen on 127.0.0.1:" + taken.getLocalPort(), "serve", "--http", String.valueOf(taken.getLocalPort()));
        }
    }
}
