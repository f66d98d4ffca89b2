package dev.mergeforge.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.mergeforge.fixtures.Arch;
import dev.mergeforge.fixtures.RandomModels;
import dev.mergeforge.io.Checkpoint;
import dev.mergeforge.run.MergeFixtures;
import dev.mergeforge.tensor.DType;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Broken or hostile safetensors files and indexes, through the CLI: exit 1, one line naming the file, inputs untouched. */
class CliFileErrorsTest {
    @TempDir static Path models;
    static RandomModels.Family single, sharded;
    @TempDir Path dir;

    static final String UP0 = "model.layers.0.mlp.up_proj.weight", UP1 = "model.layers.1.mlp.up_proj.weight";

    @BeforeAll
    static void families() {
        single = MergeFixtures.family(Arch.LLAMA, DType.BF16, 1, 1, models.resolve("single"));
        sharded = MergeFixtures.family(Arch.LLAMA, DType.BF16, 1, 2, models.resolve("sharded"));
    }

    private void fails(Path broken, RandomModels.Family f, String... mustContain) throws Exception {
        Path cfg = MergeFixtures.linear(dir, "cfg.yml", f.fineTunes().getFirst(), broken);
        CliFailure.mergeFails(1, cfg, dir.resolve("out"), List.of(f.fineTunes().getFirst(), broken), List.of("--backend", "java"), mustContain);
    }

    private Path copy(String name) throws Exception { return StSurgery.copy(single.base(), dir.resolve(name)); }

    @Test
    void truncatedFile() throws Exception {
        Path m = copy("trunc");
        Path st = m.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(st);
        Files.write(st, Arrays.copyOf(all, all.length - 100));
        fails(m, single, st.toString(), "truncated or corrupt", "re-download");
    }

    @Test
    void truncatedInsideTheHeader() throws Exception {
        Path m = copy("trunc-head");
        Path st = m.resolve("model.safetensors");
        Files.write(st, Arrays.copyOf(Files.readAllBytes(st), 40));
        fails(m, single, st.toString(), "header length", "re-download");
    }

    @Test
    void corruptedHeaderJson() throws Exception {
        Path m = copy("garbled");
        Path st = m.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(st);
        all[8] = '#'; // the header's opening brace
        Files.write(st, all);
        fails(m, single, st.toString(), "not valid JSON", "re-download");
    }

    @Test
    void headerLengthClaimingGigabytes() throws Exception {
        Path m = copy("huge");
        Path st = m.resolve("model.safetensors");
        StSurgery.setHeaderLength(st, 5_000_000_000L);
        fails(m, single, st.toString(), "5000000000", "re-download");
        StSurgery.setHeaderLength(st, -1L);
        fails(m, single, st.toString(), "18446744073709551615");
    }

    @Test
    void overlappingDataOffsets() throws Exception {
        Path m = copy("overlap");
        Path st = m.resolve("model.safetensors");
        StSurgery.editHeader(st, h -> ((ObjectNode) h.get(UP1)).set("data_offsets", h.get(UP0).get("data_offsets").deepCopy()));
        fails(m, single, st.toString(), "overlap");
    }

    @Test
    void outOfBoundsDataOffsets() throws Exception {
        Path m = copy("oob");
        Path st = m.resolve("model.safetensors");
        StSurgery.editHeader(st, h -> {
            ArrayNode off = (ArrayNode) h.get(UP1).get("data_offsets");
            off.set(0, off.get(0).asLong() + (1L << 40));
            off.set(1, off.get(1).asLong() + (1L << 40));
        });
        fails(m, single, st.toString(), UP1, "outside");
    }

    @Test
    void dtypeShapeAndByteLengthDisagree() throws Exception {
        Path m = copy("dtype");
        Path st = m.resolve("model.safetensors");
        StSurgery.editHeader(st, h -> ((ObjectNode) h.get(UP1)).put("dtype", "F32"));
        fails(m, single, st.toString(), UP1, "bytes");
        Path s = copy("shape");
        Path st2 = s.resolve("model.safetensors");
        StSurgery.editHeader(st2, h -> ((ArrayNode) h.get(UP1).get("shape")).set(0, 4096));
        fails(s, single, st2.toString(), UP1, "bytes");
        Path d = copy("unknown-dtype");
        Path st3 = d.resolve("model.safetensors");
        StSurgery.editHeader(st3, h -> ((ObjectNode) h.get(UP1)).put("dtype", "Q4"));
        fails(d, single, st3.toString(), UP1, "Q4");
    }

    private Path editIndex(String name, java.util.function.Consumer<ObjectNode> edit) throws Exception {
        Path m = StSurgery.copy(sharded.base(), dir.resolve(name));
        Path idx = m.resolve("model.safetensors.index.json");
        ObjectNode root = (ObjectNode) StSurgery.JSON.readTree(Files.readString(idx));
        edit.accept((ObjectNode) root.get("weight_map"));
        Files.writeString(idx, StSurgery.JSON.writeValueAsString(root));
        return m;
    }

    @Test
    void indexNamingAFileOutsideTheModelDirIsRefused() throws Exception {
        Files.write(dir.resolve("evil.safetensors"), Files.readAllBytes(sharded.base().resolve(
                sharded.base().toFile().list((d, n) -> n.endsWith(".safetensors"))[0])));
        Path up = editIndex("dotdot", w -> w.put(UP1, "../evil.safetensors"));
        fails(up, sharded, "../evil.safetensors", "outside the model directory");
        Path abs = editIndex("absolute", w -> w.put(UP1, dir.resolve("evil.safetensors").toString()));
        fails(abs, sharded, "evil.safetensors", "outside the model directory");
    }

    @Test
    void indexNamingAMissingShard() throws Exception {
        Path m = editIndex("missing-shard", w -> w.put(UP1, "model-00009-of-00009.safetensors"));
        fails(m, sharded, "model-00009-of-00009.safetensors", "missing");
    }

    @Test
    void aDeletedShardIsNamed() throws Exception {
        Path m = StSurgery.copy(sharded.base(), dir.resolve("deleted"));
        String shard = m.toFile().list((d, n) -> n.endsWith(".safetensors"))[0];
        Files.delete(m.resolve(shard));
        fails(m, sharded, shard, "missing");
    }

    @Test
    void symlinksInsideAModelDirAreFollowedLikeTheHfCache() throws Exception {
        // snapshots/<commit>/file -> ../../blobs/<hash>, as huggingface_hub lays out its cache
        Path blobs = Files.createDirectories(dir.resolve("cache/blobs"));
        Path snap = Files.createDirectories(dir.resolve("cache/snapshots/0123abcd"));
        try (var s = Files.list(sharded.base())) {
            int i = 0;
            for (Path f : s.toList()) {
                Path blob = blobs.resolve("blob" + i++);
                Files.copy(f, blob);
                Files.createSymbolicLink(snap.resolve(f.getFileName()), Path.of("../../blobs").resolve(blob.getFileName()));
            }
        }
        Path cfg = MergeFixtures.linear(dir, "cfg.yml", snap);
        var before = CliFailure.hashes(dir.resolve("cache"));
        Path out = dir.resolve("out");
        MergeFixtures.Run r = MergeFixtures.cli("merge", cfg.toString(), out.toString(), "-q", "--backend", "java");
        assertEquals(0, r.exit(), r.err());
        try (Checkpoint in = Checkpoint.open(sharded.base().toString()); Checkpoint o = Checkpoint.open(out.toString())) {
            for (String name : in.names()) {
                assertEquals(-1, in.tensor(name).data().mismatch(o.tensor(name).data()), name + ": weight 1 is the identity");
            }
        }
        assertEquals(before, CliFailure.hashes(dir.resolve("cache")), "cache untouched, links kept");
    }

    @Test
    void nonUtf8HeaderIsNamed() throws Exception {
        Path m = copy("latin1");
        Path st = m.resolve("model.safetensors");
        byte[] all = Files.readAllBytes(st);
        String h = new String(all, 8, (int) StSurgery.headerLength(all), StandardCharsets.UTF_8);
        int at = 8 + h.indexOf(UP1) + 7;
        all[at] = (byte) 0xFF;
        Files.write(st, all);
        fails(m, single, st.toString(), "UTF-8");
    }
}
