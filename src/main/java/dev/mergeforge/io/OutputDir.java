package dev.mergeforge.io;

import dev.mergeforge.errors.ConfigException;
import dev.mergeforge.errors.MergeforgeException;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.List;

/**
 * The output directory of a merge, written atomically: everything goes to a hidden temporary
 * directory beside OUTPUT_DIR and is renamed into place by {@link #commit()}. Until then a crash,
 * an error or SIGINT/SIGTERM (a shutdown hook) removes the temporary directory, so OUTPUT_DIR never
 * holds half a model. Input model directories are never written into or deleted.
 */
public final class OutputDir implements AutoCloseable {
    private final Path target;
    private final Path temp;
    private final boolean overwrite;
    private final Thread cleanup;
    private volatile boolean committed;
    /** Set once the temporary directory is removed (failure, close or a shutdown signal): commit is then refused. */
    private volatile boolean removed;

    private OutputDir(Path target, Path temp, boolean overwrite) {
        this.target = target;
        this.temp = temp;
        this.overwrite = overwrite;
        this.cleanup = new Thread(this::removeTemp, "mergeforge-cleanup");
        Runtime.getRuntime().addShutdownHook(cleanup);
    }

    /**
     * Checks the target and creates the temporary directory.
     *
     * @param inputs the input model directories, which the output must neither be, contain nor sit inside
     * @param bytesNeeded bytes the merge will write (checked against free space)
     */
    public static OutputDir create(Path target, boolean overwrite, List<Path> inputs, long bytesNeeded) {
        Path abs = target.toAbsolutePath().normalize();
        check(abs, overwrite, inputs);
        Path parent = abs.getParent();
        try {
            Files.createDirectories(parent);
            long free = Files.getFileStore(parent).getUsableSpace();
            long need = bytesNeeded + (64L << 20);
            if (free < need) {
                throw new MergeforgeException("not enough disk space in " + parent + ": the merge writes " + human(bytesNeeded)
                        + " (plus 64 MB of margin) but only " + human(free) + " are free; free some space or choose another OUTPUT_DIR");
            }
            return new OutputDir(abs, createTemp(parent, "." + abs.getFileName() + ".mergeforge-tmp-"), overwrite);
        } catch (IOException e) {
            throw new MergeforgeException("cannot create the output directory beside " + abs + ": " + e.getMessage()
                    + "; check that its parent is writable", e);
        }
    }

    /**
     * A fresh directory {@code prefix + random} in parent, created without explicit permissions so
     * the umask decides them (as mergekit's output; Files.createTempDirectory would make it
     * drwx------, and the rename would carry that onto OUTPUT_DIR).
     */
    static Path createTemp(Path parent, String prefix) throws IOException {
        java.security.SecureRandom rnd = new java.security.SecureRandom();
        for (int attempt = 0; ; attempt++) {
            Path p = parent.resolve(prefix + Long.toUnsignedString(rnd.nextLong(), 36));
            try {
                return Files.createDirectory(p);
            } catch (java.nio.file.FileAlreadyExistsException e) {
                if (attempt >= 100) throw e;
            }
        }
    }

    private static String human(long bytes) {
        return bytes >= 1_000_000_000L ? String.format(java.util.Locale.ROOT, "%.2f GB", bytes / 1e9)
                : bytes >= 1_000_000L ? String.format(java.util.Locale.ROOT, "%.1f MB", bytes / 1e6) : bytes + " bytes";
    }

    /** Refuses outputs that would clobber something: existing dirs without --overwrite, and input dirs always. */
    public static void check(Path target, boolean overwrite, List<Path> inputs) {
        Path abs = target.toAbsolutePath().normalize();
        Path real = realOrSelf(abs);
        for (Path in : inputs) {
            Path inReal = realOrSelf(in.toAbsolutePath().normalize());
            if (real.equals(inReal) || real.startsWith(inReal) || inReal.startsWith(real)) {
                throw new ConfigException("OUTPUT_DIR " + target + " is, contains or lies inside the input model " + in
                        + "; choose an output directory outside every input model");
            }
        }
        if (Files.exists(abs, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            if (!overwrite) {
                throw new ConfigException("OUTPUT_DIR " + target + " already exists; pass --overwrite to replace it or choose another directory");
            }
            if (!Files.isDirectory(abs)) {
                throw new ConfigException("OUTPUT_DIR " + target + " exists and is not a directory; remove it or choose another path");
            }
        }
    }

    private static Path realOrSelf(Path p) {
        try {
            return p.toRealPath();
        } catch (IOException e) {
            Path parent = p.getParent();
            return parent == null ? p : realOrSelf(parent).resolve(p.getFileName());
        }
    }

    /** Where files are written until commit. */
    public Path temp() { return temp; }

    public Path target() { return target; }

    /** Moves the finished model into place (replacing an old OUTPUT_DIR only when overwrite was asked). */
    public synchronized void commit() {
        // synchronized with removeTemp: a SIGTERM during the renames waits for them, one before finds nothing to commit
        if (removed) throw new MergeforgeException("merge interrupted; nothing was written to " + target);
        try {
            Path old = null;
            if (Files.exists(target)) {
                if (!overwrite) throw new ConfigException("OUTPUT_DIR " + target + " appeared during the merge; pass --overwrite to replace it");
                old = target.resolveSibling("." + target.getFileName() + ".mergeforge-old-" + ProcessHandle.current().pid());
                Files.move(target, old, StandardCopyOption.ATOMIC_MOVE);
            }
            Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
            committed = true;
            if (old != null) deleteTree(old);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot move the merged model into " + target + ": " + e.getMessage() + "; check the permissions of its folder", e);
        }
    }

    private synchronized void removeTemp() {
        if (committed || removed) return;
        removed = true;
        // on a signal the hook runs beside the merge's threads, whose writer may still add files: the
        // directory first leaves its path (one rename, after which no write reaches it), then goes,
        // walked again while a file created just before the rename still shows up in it
        Path doomed = temp.resolveSibling(temp.getFileName() + "-removing");
        try {
            Files.move(temp, doomed, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            doomed = temp;
        }
        for (int i = 0; i < REMOVE_ATTEMPTS && Files.exists(doomed, java.nio.file.LinkOption.NOFOLLOW_LINKS); i++) deleteTree(doomed);
    }

    /** Walks of the temporary tree a removal makes at most. */
    static final int REMOVE_ATTEMPTS = 10;

    /** Removes the temporary directory if the merge did not commit. */
    @Override
    public void close() {
        removeTemp();
        try {
            Runtime.getRuntime().removeShutdownHook(cleanup);
        } catch (IllegalStateException ignored) {
            // shutting down: the hook runs anyway
        }
    }

    /** Deletes a directory tree (best effort; links are removed, never followed). */
    public static void deleteTree(Path root) {
        if (!Files.exists(root, java.nio.file.LinkOption.NOFOLLOW_LINKS)) return;
        try {
            Files.walkFileTree(root, new SimpleFileVisitor<>() {
                @Override public FileVisitResult visitFile(Path f, BasicFileAttributes a) throws IOException {
                    Files.delete(f);
                    return FileVisitResult.CONTINUE;
                }

                @Override public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
                    Files.delete(d);
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException ignored) {
            // best effort: a leftover temp dir is named clearly
        }
    }
}
