"""Shared by the tests: the repo's launcher, one tiny generated model family, a safetensors reader."""

import atexit
import json
import os
import shutil
import struct
import subprocess
import tempfile
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
LAUNCHER = REPO / "bin" / "mergeforge"
MERGEKIT_YAML = REPO / "bin" / "mergekit-yaml"

_family = None

# Tiny models: the JVM's start dominates every call, and C1 alone starts it ~30% cheaper (same results: Java's
# floating point does not depend on the JIT tier).
os.environ.setdefault("MERGEFORGE_JAVA_OPTS", "-XX:TieredStopAtLevel=1")


def require_launcher():
    """Skips the calling test unless `make build` has written bin/mergeforge and bin/mergekit-yaml."""
    if not (os.access(LAUNCHER, os.X_OK) and os.access(MERGEKIT_YAML, os.X_OK)):
        raise unittest.SkipTest(f"{LAUNCHER} not built: run `make build` first")


def workdir():
    d = Path(tempfile.mkdtemp(prefix="mergeforge-pytest-"))
    atexit.register(shutil.rmtree, d, True)
    return d


def family():
    """ROOT/base, ROOT/ft1, ROOT/ft2: a 2-layer bf16 Llama from `mergeforge fixture`, made once per run."""
    global _family
    require_launcher()
    if _family is None:
        root = workdir() / "fam"
        subprocess.run([str(LAUNCHER), "fixture", str(root), "--fine-tunes", "2"], check=True, capture_output=True, text=True)
        _family = root
    return _family


def ties_config(root):
    """A deterministic merge config (TIES with a density gradient) over the family."""
    return {
        "merge_method": "ties",
        "base_model": str(root / "base"),
        "models": [
            {"model": str(root / "ft1"), "parameters": {"weight": 0.6, "density": [0.3, 0.8]}},
            {"model": str(root / "ft2"), "parameters": {"weight": 0.4, "density": 0.5}},
        ],
        "parameters": {"normalize": True},
        "dtype": "bfloat16",
    }


_reference = None


SHARD = 50_000


def reference_merge():
    """The ties config merged by `bin/mergeforge merge` itself (JSON text: a YAML reader reads it alike),
    in shards of at most SHARD bytes (several files and an index)."""
    global _reference
    if _reference is None:
        d = workdir()
        cfg = d / "ties.json"
        cfg.write_text(json.dumps(ties_config(family())))
        out = d / "ref"
        subprocess.run([str(LAUNCHER), "merge", str(cfg), str(out), "-q", "--out-shard-size", str(SHARD)], check=True, capture_output=True, text=True)
        _reference = out
    return _reference


def weight_files(d):
    """{name: bytes} of the safetensors shards and index of a model directory."""
    return {p.name: p.read_bytes() for p in sorted(Path(d).iterdir()) if p.name.startswith("model")}


def tensors(d):
    """{tensor name: (dtype, shape, raw bytes)} over every shard of a model directory, read independently of mergeforge."""
    out = {}
    for p in sorted(Path(d).glob("*.safetensors")):
        b = p.read_bytes()
        n = struct.unpack("<Q", b[:8])[0]
        header = json.loads(b[8:8 + n])
        for name, t in header.items():
            if name == "__metadata__":
                continue
            s, e = t["data_offsets"]
            out[name] = (t["dtype"], t["shape"], b[8 + n + s:8 + n + e])
    return out
