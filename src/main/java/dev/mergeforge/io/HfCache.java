package dev.mergeforge.io;

import dev.mergeforge.errors.CheckpointException;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Finds a model in the local Hugging Face hub cache; never touches the network. The cache holds
 * {@code models--<org>--<name>/refs/<branch>} (a file with the commit hash) and
 * {@code models--<org>--<name>/snapshots/<commit>/} (the files, usually symlinks into
 * {@code ../../blobs/}). The root is {@code $HF_HUB_CACHE}, else {@code $HF_HOME/hub}, else
 * {@code $XDG_CACHE_HOME/huggingface/hub}, else {@code ~/.cache/huggingface/hub}, as
 * huggingface_hub computes it.
 */
public final class HfCache {
    private static final String SEGMENT = "[A-Za-z0-9][A-Za-z0-9._-]*";
    private static final Pattern REPO = Pattern.compile(SEGMENT + "(/" + SEGMENT + ")?");
    /** Branch, tag or commit: segments separated by '/', as in "main", "v1.0" or "refs/pr/1". */
    private static final Pattern REVISION = Pattern.compile(SEGMENT + "(/" + SEGMENT + ")*");

    private HfCache() {}

    /** A hub model id with an optional revision ("main" when none was given). */
    public record HubId(String repo, String revision) {
        public HubId {
            if (repo == null || !REPO.matcher(repo).matches() || repo.contains("..")) {
                throw new IllegalArgumentException("'" + repo + "' is not a Hugging Face model id like org/name");
            }
            if (revision == null || !REVISION.matcher(revision).matches() || revision.contains("..")) {
                throw new IllegalArgumentException("'" + revision + "' is not a revision (branch, tag or commit hash)");
            }
        }

        /** The cache folder name: "models--org--name". */
        public String folder() { return "models--" + repo.replace("/", "--"); }

        @Override public String toString() { return repo + "@" + revision; }
    }

    /** Parses "org/name" or "org/name@revision"; null when ref does not have that shape. */
    public static HubId parse(String ref) {
        if (ref == null) return null;
        int at = ref.indexOf('@');
        String repo = at < 0 ? ref : ref.substring(0, at);
        String rev = at < 0 ? "main" : ref.substring(at + 1);
        if (!REPO.matcher(repo).matches() || repo.contains("..")) return null;
        if (!REVISION.matcher(rev).matches() || rev.contains("..")) return null;
        return new HubId(repo, rev);
    }

    /** The cache root from this process's environment. */
    public static Path defaultRoot() {
        return defaultRoot(System.getenv(), System.getProperty("user.home"));
    }

    /** The cache root huggingface_hub would use with this environment and home directory. */
    static Path defaultRoot(Map<String, String> env, String home) {
        String hub = env.get("HF_HUB_CACHE");
        if (hub != null && !hub.isBlank()) return Path.of(hub);
        String hfHome = env.get("HF_HOME");
        if (hfHome != null && !hfHome.isBlank()) return Path.of(hfHome, "hub");
        String xdg = env.get("XDG_CACHE_HOME");
        if (xdg != null && !xdg.isBlank()) return Path.of(xdg, "huggingface", "hub");
        return Path.of(home, ".cache", "huggingface", "hub");
    }

    /**
     * The snapshot directory of {@code id} under {@code root}: {@code refs/<revision>} names the
     * commit, or the revision is itself a commit with a snapshot. Null when the cache lacks it.
     */
    public static Path find(HubId id, Path root) {
        Path repoDir = root.resolve(id.folder());
        if (!Files.isDirectory(repoDir)) return null;
        Path ref = repoDir.resolve("refs").resolve(id.revision());
        String commit = id.revision();
        if (Files.isRegularFile(ref)) {
            try {
                commit = Files.readString(ref, StandardCharsets.UTF_8).trim();
            } catch (IOException e) {
                throw new CheckpointException("cannot read " + ref + ": " + e.getMessage() + "; check its permissions", e);
            }
            if (!commit.matches(SEGMENT) || commit.contains("..")) {
                throw new CheckpointException(ref + " holds '" + commit + "', not a commit hash; re-download "
                        + id.repo() + " or pass a local path");
            }
        }
        Path snapshot = repoDir.resolve("snapshots").resolve(commit);
        return Files.isDirectory(snapshot) ? snapshot : null;
    }

    /** Like {@link #find} but a missing model is a {@link CheckpointException} saying where it looked. */
    public static Path resolve(HubId id, Path root, String ref) {
        Path snapshot = find(id, root);
        if (snapshot != null) return snapshot;
        Path repoDir = root.resolve(id.folder());
        String seen = Files.isDirectory(repoDir) ? " (cached revisions: " + available(repoDir) + ")" : "";
        throw new CheckpointException("model '" + ref + "' not found: no local directory '" + Path.of(ref).toAbsolutePath()
                + "' and no revision '" + id.revision() + "' in the Hugging Face cache at " + repoDir + seen
                + "; download it first (hf download " + id.repo() + (id.revision().equals("main") ? "" : " --revision " + id.revision())
                + ") or pass a local model directory");
    }

    private static String available(Path repoDir) {
        List<String> names = new ArrayList<>();
        for (String sub : List.of("refs", "snapshots")) {
            Path d = repoDir.resolve(sub);
            if (!Files.isDirectory(d)) continue;
            try (Stream<Path> s = Files.list(d)) {
                s.map(p -> sub + "/" + p.getFileName()).sorted().forEach(names::add);
            } catch (IOException e) {
                names.add(sub + "/?");
            }
        }
        return names.isEmpty() ? "none" : String.join(", ", names);
    }
}
