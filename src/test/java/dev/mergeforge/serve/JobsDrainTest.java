package dev.mergeforge.serve;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Jobs#drain()} returns only after every job's final line has been sent: `serve` exits when
 * it returns, so a final line still on its way was lost (a pipe client waited for it in vain).
 */
@Timeout(60)
class JobsDrainTest {
    @TempDir Path root;

    @Test
    void drainWaitsUntilTheFinalLineIsSent() throws Exception {
        ServeFixtures fx = new ServeFixtures(root.resolve("fx"));
        CountDownLatch sending = new CountDownLatch(1), release = new CountDownLatch(1);
        List<String> sent = new CopyOnWriteArrayList<>();
        Jobs.Sink sink = line -> {
            if (line.path("event").asText().equals("result")) {
                sending.countDown(); // the job is handing over its final line: hold it there
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
            sent.add(line.path("event").asText());
        };
        Jobs jobs = new Jobs(1L << 30, 1);
        assertTrue(jobs.submit(fx.plan("p", root.resolve("out")), sink));
        assertTrue(sending.await(30, TimeUnit.SECONDS), "the plan never reached its final line");

        Thread drainer = Thread.ofPlatform().start(() -> {
            try {
                jobs.drain();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        drainer.join(500);
        assertTrue(drainer.isAlive(), "drain() returned while the job's final line was still being sent");
        assertFalse(sent.contains("result"));

        release.countDown();
        drainer.join(30_000);
        assertFalse(drainer.isAlive(), "drain() did not return after the final line was sent");
        assertEquals("result", sent.getLast());
        assertEquals(0, jobs.active());
    }
}
