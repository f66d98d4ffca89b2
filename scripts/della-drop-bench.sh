#!/usr/bin/env bash
# DELLA's drop as one native op against the three it fuses, one thread, on real task-vector rows:
# tau = ft1 - base of one bf16 tensor of a family (e.g. the slice `bench --shape 70b --keep` leaves, or
# `bench --params 300000000`'s models-300000000), its first ROWS rows. Builds bench/native/della_drop_bench.c
# against target/native (make native first).
# Usage: scripts/della-drop-bench.sh FAMILY_DIR TENSOR [ROWS]
set -euo pipefail
FAM=$1; TENSOR=$2; ROWS=${3:-128}
OUT=${WORK:-target/della-drop-bench}; mkdir -p "$OUT"
python3 - "$FAM" "$TENSOR" "$ROWS" "$OUT/rows.bin" <<'PY'
import json, struct, sys, array
fam, name, nr, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def rows(model):
    with open(f"{fam}/{model}/model.safetensors", "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); t = h[name]
        assert t["dtype"] == "BF16" and len(t["shape"]) == 2, f"{name}: a 2-D bf16 tensor is needed"
        cols = t["shape"][1]; k = min(nr, t["shape"][0])
        f.seek(8 + n + t["data_offsets"][0]); a = array.array("H"); a.frombytes(f.read(k * cols * 2))
        return k, cols, array.array("f", array.array("I", [v << 16 for v in a]).tobytes())
k, cols, base = rows("base"); _, _, ft = rows("ft1")
tau = array.array("f", [x - b for x, b in zip(ft, base)])   # exact in double, rounded once to float32
with open(out, "wb") as o: o.write(struct.pack("<qq", k, cols)); o.write(tau.tobytes())
PY
${CC:-gcc} -O2 -ffp-contract=off -Inative/include -o "$OUT/della_drop_bench" bench/native/della_drop_bench.c -Ltarget/native -lmergeops -Wl,-rpath,"$(realpath target/native)"
"$OUT/della_drop_bench" "$OUT/rows.bin"
