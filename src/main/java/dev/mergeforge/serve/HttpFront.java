package dev.mergeforge.serve;

import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;

/**
 * The protocol over HTTP (docs/protocol.md): {@code GET /health} without a token;
 * {@code POST /v1/requests} with {@code Authorization: Bearer TOKEN} and one JSON request as the body,
 * answered with that request's lines as a stream of newline-delimited JSON, ending with its
 * "result" or "error" line. A refused request gets status 400, a missing or wrong token 401.
 */
public final class HttpFront implements AutoCloseable {
    private static final int MAX_BODY = 1 << 20;
    private final HttpServer server;
    private final ExecutorService pool;
    private final byte[] token;
    private final Jobs jobs;

    private HttpFront(HttpServer server, ExecutorService pool, String token, Jobs jobs) {
        this.server = server;
        this.pool = pool;
        this.token = ("Bearer " + token).getBytes(StandardCharsets.UTF_8);
        this.jobs = jobs;
    }

    /** Listens on {@code bind}:{@code port} (0 picks a free port). */
    public static HttpFront start(String bind, int port, String token, Jobs jobs) {
        if (token == null || token.length() < 16) throw new IllegalArgumentException("a bearer token of at least 16 characters is required");
        HttpServer s;
        try {
            s = HttpServer.create(new InetSocketAddress(bind, port), 0);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot listen on " + bind + ":" + port + ": " + e.getMessage() + "; choose another --http port or --bind address", e);
        }
        ExecutorService pool = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "mergeforge-http");
            t.setDaemon(true);
            return t;
        });
        HttpFront f = new HttpFront(s, pool, token, jobs);
        s.createContext("/health", f::health);
        s.createContext("/v1/requests", f::request);
        s.createContext("/", ex -> f.reply(ex, 404, Jobs.error(null, "no such path " + ex.getRequestURI().getPath()
                + "; POST requests to /v1/requests, GET /health", 2, false)));
        s.setExecutor(pool);
        s.start();
        return f;
    }

    public int port() { return server.getAddress().getPort(); }

    private void health(HttpExchange ex) throws IOException {
        ObjectNode n = Json.MAPPER.createObjectNode().put("status", "ok").put("active_jobs", jobs.active());
        reply(ex, 200, n);
    }

    private void request(HttpExchange ex) throws IOException {
        try (ex) {
            if (!ex.getRequestMethod().equals("POST")) {
                reply(ex, 405, Jobs.error(null, ex.getRequestMethod() + " /v1/requests: use POST with one JSON request as the body", 2, false));
                return;
            }
            String auth = ex.getRequestHeaders().getFirst("Authorization");
            if (auth == null || !MessageDigest.isEqual(token, auth.getBytes(StandardCharsets.UTF_8))) {
                ex.getResponseHeaders().add("WWW-Authenticate", "Bearer");
                reply(ex, 401, Jobs.error(null, "missing or wrong bearer token; send the header Authorization: Bearer TOKEN with the token"
                        + " the server printed when it started (or was given with --token)", 2, false));
                return;
            }
            byte[] body = readBody(ex.getRequestBody());
            if (body == null) {
                reply(ex, 413, Jobs.error(null, "request body over " + MAX_BODY + " bytes; send one JSON request (configs by path or as text)", 2, false));
                return;
            }
            BlockingQueue<ObjectNode> lines = new LinkedBlockingQueue<>();
            boolean accepted = jobs.submit(new String(body, StandardCharsets.UTF_8).strip(), lines::add);
            ex.getResponseHeaders().add("Content-Type", "application/x-ndjson");
            ex.sendResponseHeaders(accepted ? 200 : 400, 0);
            OutputStream out = ex.getResponseBody();
            boolean clientGone = false;
            while (true) {
                ObjectNode n = lines.take();
                if (!clientGone) {
                    try {
                        out.write((n + "\n").getBytes(StandardCharsets.UTF_8));
                        out.flush();
                    } catch (IOException e) {
                        clientGone = true; // the job runs on; its client can ask for its status or cancel it
                    }
                }
                String ev = n.path("event").asText();
                if (ev.equals("result") || ev.equals("error")) break;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static byte[] readBody(InputStream in) throws IOException {
        byte[] b = in.readNBytes(MAX_BODY + 1);
        return b.length > MAX_BODY ? null : b;
    }

    private void reply(HttpExchange ex, int status, ObjectNode n) throws IOException {
        byte[] b = (n + "\n").getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().add("Content-Type", status == 200 && n.has("status") ? "application/json" : "application/x-ndjson");
        ex.sendResponseHeaders(status, b.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(b);
        }
    }

    @Override
    public void close() {
        server.stop(0);
        pool.shutdownNow();
    }
}
