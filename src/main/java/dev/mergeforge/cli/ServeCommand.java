package dev.mergeforge.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.serve.HttpFront;
import dev.mergeforge.serve.Jobs;
import dev.mergeforge.serve.StdioFront;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** `mergeforge serve`: a warm process taking JSON requests on stdin/stdout and, with --http, over HTTP (docs/protocol.md). */
@Command(mixinStandardHelpOptions = true, name = "serve",
        description = "Keep the JVM warm and take merge, plan, calibrate, eval, cancel and status requests as JSON lines on stdin"
                + " (responses on stdout) and, with --http, over HTTP with a bearer token. See docs/protocol.md.")
final class ServeCommand implements Callable<Integer> {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Option(names = "--http", paramLabel = "PORT", description = "Also serve HTTP on this port (0: a free port, named in the ready line).")
    Integer httpPort;

    @Option(names = "--bind", defaultValue = "127.0.0.1", description = "Address HTTP listens on (default 127.0.0.1: this machine only).")
    String bind;

    @Option(names = "--token", description = "Bearer token HTTP requests must send (default: a random one, printed once in the ready line).")
    String token;

    @Option(names = "--memory-budget", paramLabel = "SIZE", description = "Working memory the running jobs may use together (default: half the physical memory).")
    String memoryBudget;

    @Option(names = "--max-jobs", defaultValue = "1", description = "Jobs that may run at once within the budget (default 1).")
    int maxJobs;

    @Option(names = "--debug", description = "Print stack traces with errors.")
    boolean debug;

    @Override
    public Integer call() throws InterruptedException {
        if (maxJobs < 1) throw new ConfigException("--max-jobs " + maxJobs + ": must be at least 1");
        if (token != null && token.length() < 16) throw new ConfigException("--token: at least 16 characters are required; use a long random string");
        long budget = memoryBudget != null ? Sizes.parse("--memory-budget", memoryBudget) : physicalMemory() / 2;
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        Jobs jobs = new Jobs(budget, maxJobs);
        Jobs.Sink sink = StdioFront.lineWriter(out);
        ObjectNode ready = dev.mergeforge.serve.Json.readyLine(budget, maxJobs);
        HttpFront http = null;
        if (httpPort != null) {
            if (httpPort < 0 || httpPort > 65535) throw new ConfigException("--http " + httpPort + ": expected a port between 0 and 65535");
            String t = token != null ? token : randomToken();
            http = HttpFront.start(bind, httpPort, t, jobs);
            String url = "http://" + (bind.contains(":") ? "[" + bind + "]" : bind) + ":" + http.port();
            ready.put("http", url);
            if (token == null) ready.put("token", t);
            err.println("mergeforge serve: HTTP on " + url + (token == null ? " (bearer token in the ready line on stdout)" : ""));
            err.flush();
        }
        sink.send(ready);
        StdioFront.serve(new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8)), out, jobs);
        if (http != null) new CountDownLatch(1).await(); // stdin closed: HTTP serves on until the process is stopped
        jobs.drain();
        return 0;
    }

    private static String randomToken() {
        byte[] b = new byte[24];
        new SecureRandom().nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    private static long physicalMemory() {
        if (ManagementFactory.getOperatingSystemMXBean() instanceof com.sun.management.OperatingSystemMXBean os) return os.getTotalMemorySize();
        return Runtime.getRuntime().maxMemory();
    }
}
