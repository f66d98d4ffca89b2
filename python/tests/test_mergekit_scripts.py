"""Scripts written for mergekit, changed only in the command name or the import line, produce our merge."""

import io
import json
import subprocess
import unittest
from contextlib import redirect_stderr

from tests import support

# A script as mergekit users write it (mergekit 0.1.4's Python API).
MERGEKIT_SCRIPT = """\
import json
from mergekit.config import MergeConfiguration
from mergekit.merge import MergeOptions, run_merge

with open(CONFIG_PATH, encoding="utf-8") as fp:
    merge_config = MergeConfiguration.model_validate(json.load(fp))

run_merge(
    merge_config,
    out_path=OUTPUT_PATH,
    options=MergeOptions(
        cuda=False,
        copy_tokenizer=True,
        lazy_unpickle=True,
        low_cpu_memory=True,
        allow_crimes=True,
        clone_tensors=True,
        trust_remote_code=True,
        async_write=True,
        write_threads=2,
        num_threads=2,
        random_seed=11,
        verbosity=1,
        out_shard_size=parse_size("50k"),
    ),
)
"""
MERGEKIT_IMPORTS = "from mergekit.config import MergeConfiguration\nfrom mergekit.merge import MergeOptions, run_merge\n"
OUR_IMPORT = "from mergeforge.mergekit_compat import MergeConfiguration, MergeOptions, run_merge\n"


def setUpModule():
    support.require_launcher()


class MergekitScriptsTest(unittest.TestCase):
    def test_python_script_with_one_import_line_changed(self):
        d = support.workdir()
        config_path = d / "config.json"
        config_path.write_text(json.dumps(support.ties_config(support.family())))
        ours = MERGEKIT_SCRIPT.replace(MERGEKIT_IMPORTS, OUR_IMPORT)
        self.assertEqual(1, len(set(ours.splitlines()) - set(MERGEKIT_SCRIPT.splitlines())), "one line differs")
        from mergeforge.mergekit_compat import parse_kmb
        progress = io.StringIO()
        with redirect_stderr(progress):
            exec(compile(ours, "mergekit_script.py", "exec"), {"CONFIG_PATH": str(config_path), "OUTPUT_PATH": str(d / "out"),
                                                             "parse_size": parse_kmb})
        self.assertIn("[1/", progress.getvalue(), "progress on stderr as mergekit shows it (no quiet)")
        out = d / "out"
        files = support.weight_files(out)
        self.assertEqual(support.weight_files(support.reference_merge()), files)
        self.assertIn("model-00001-of-0000%d.safetensors" % (len(files) - 1), files)
        self.assertIn("model.safetensors.index.json", files)
        for f in ("mergekit_config.yml", "README.md", "config.json", "tokenizer.json", "tokenizer_config.json"):
            self.assertTrue((out / f).is_file(), f)

    def test_command_line_with_the_command_name_changed(self):
        d = support.workdir()
        cfg = d / "config.yml"
        cfg.write_text("# written for mergekit\n" + json.dumps(support.ties_config(support.family()), indent=1) + "\n")
        cmd = ["mergekit-yaml", str(cfg), str(d / "out"), "--copy-tokenizer", "--low-cpu-memory", "--allow-crimes",
               "--lazy-unpickle", "--out-shard-size", "50k", "--random-seed", "3", "-v"]
        cmd[0] = str(support.MERGEKIT_YAML)
        p = subprocess.run(cmd, capture_output=True, text=True)
        self.assertEqual(0, p.returncode, p.stderr)
        self.assertEqual(support.weight_files(support.reference_merge()), support.weight_files(d / "out"))
        self.assertEqual(cfg.read_text(), (d / "out" / "mergekit_config.yml").read_text(), "the config text verbatim")
        notes = [l for l in p.stderr.splitlines() if l.startswith("note: ")]
        self.assertEqual(2, len([n for n in notes if n.startswith(("note: --low-cpu-memory", "note: --lazy-unpickle"))]), p.stderr)
        bad = subprocess.run([str(support.MERGEKIT_YAML), str(cfg), str(d / "out2"), "--device", "mps"], capture_output=True, text=True)
        self.assertEqual(2, bad.returncode)
        self.assertTrue(bad.stderr.splitlines()[-1].startswith("error: --device mps"), bad.stderr)
        self.assertFalse((d / "out2").exists())


if __name__ == "__main__":
    unittest.main()
