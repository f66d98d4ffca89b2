package dev.mergeforge.api;

import dev.mergeforge.config.ConfigReader;
import dev.mergeforge.config.MergeConfig;
import dev.mergeforge.errors.ConfigException;

import java.nio.file.Path;

/**
 * A merge: a mergekit YAML config (a file, or the YAML text itself; model paths in it are relative
 * to the process's working directory) into {@code output}. Validated on construction; start from
 * {@link #of(Path, Path)} or {@link #ofYaml(String, Path)} and change one field with the withers.
 *
 * @param seed           seed of the random methods (DARE, DELLA, ...)
 * @param maxShardBytes  largest output shard in bytes
 * @param overwrite      replace {@code output} if it exists
 * @param allowNonFinite merge even if an input holds NaN or Inf
 * @param allowCrimes    merge models of different architectures (mergekit's --allow-crimes), each reported as a {@link Event.Warning}
 * @param maxMemoryBytes the memory the merge may use ({@code --max-memory}, docs/io.md "Memory budget"); 0 for the machine's default
 */
public record MergeRequest(Path configFile, String configYaml, Path output, long seed, long maxShardBytes, boolean overwrite,
                           boolean allowNonFinite, boolean allowCrimes, BackendChoice backend, long maxMemoryBytes) {
    /** 5 GB, the default shard size (as mergekit's). */
    public static final long DEFAULT_SHARD_BYTES = 5_000_000_000L;

    public MergeRequest {
        if ((configFile == null) == (configYaml == null)) {
            throw new ConfigException("merge request: give exactly one of a config file and config YAML text");
        }
        if (output == null) throw new ConfigException("merge request: the output directory is missing; give where the merged model goes");
        if (maxShardBytes <= 0) throw new ConfigException("merge request: shard size " + maxShardBytes + " must be positive (e.g. 5GB)");
        if (backend == null) throw new ConfigException("merge request: backend choice is missing; use BackendChoice.AUTO");
        if (maxMemoryBytes < 0) throw new ConfigException("merge request: memory budget " + maxMemoryBytes + " must be positive (e.g. 1GB), or 0 for the default");
    }

    public static MergeRequest of(Path configFile, Path output) {
        return new MergeRequest(configFile, null, output, 0, DEFAULT_SHARD_BYTES, false, false, false, BackendChoice.AUTO, 0);
    }

    public static MergeRequest ofYaml(String configYaml, Path output) {
        return new MergeRequest(null, configYaml, output, 0, DEFAULT_SHARD_BYTES, false, false, false, BackendChoice.AUTO, 0);
    }

    public MergeRequest withSeed(long s) { return new MergeRequest(configFile, configYaml, output, s, maxShardBytes, overwrite, allowNonFinite, allowCrimes, backend, maxMemoryBytes); }

    public MergeRequest withMaxShardBytes(long b) { return new MergeRequest(configFile, configYaml, output, seed, b, overwrite, allowNonFinite, allowCrimes, backend, maxMemoryBytes); }

    public MergeRequest withOverwrite(boolean o) { return new MergeRequest(configFile, configYaml, output, seed, maxShardBytes, o, allowNonFinite, allowCrimes, backend, maxMemoryBytes); }

    public MergeRequest withAllowNonFinite(boolean a) { return new MergeRequest(configFile, configYaml, output, seed, maxShardBytes, overwrite, a, allowCrimes, backend, maxMemoryBytes); }

    public MergeRequest withAllowCrimes(boolean c) { return new MergeRequest(configFile, configYaml, output, seed, maxShardBytes, overwrite, allowNonFinite, c, backend, maxMemoryBytes); }

    public MergeRequest withBackend(BackendChoice b) { return new MergeRequest(configFile, configYaml, output, seed, maxShardBytes, overwrite, allowNonFinite, allowCrimes, b, maxMemoryBytes); }

    public MergeRequest withMaxMemoryBytes(long m) { return new MergeRequest(configFile, configYaml, output, seed, maxShardBytes, overwrite, allowNonFinite, allowCrimes, backend, m); }

    /** Reads and validates the config (all problems in one ConfigException). */
    MergeConfig readConfig() {
        return configFile != null ? ConfigReader.read(configFile) : ConfigReader.parse(configYaml, source());
    }

    /** How messages name the config: its file, or "&lt;config&gt;" for text. */
    String source() { return configFile != null ? configFile.toString() : "<config>"; }
}
