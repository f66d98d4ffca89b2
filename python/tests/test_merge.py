import json
import os
import unittest

import mergeforge
from tests import support


def setUpModule():
    support.require_launcher()


class MergeTest(unittest.TestCase):
    def test_dict_config_gives_merges_bytes_result_and_events(self):
        root = support.family()
        out = support.workdir() / "from-dict"
        seen = []
        r = mergeforge.merge(support.ties_config(root), out, progress=seen.append, launcher=support.LAUNCHER,
                            out_shard_size=support.SHARD)
        self.assertEqual(support.weight_files(support.reference_merge()), support.weight_files(out),
                         "same files, same bytes as `mergeforge merge` on the same config")
        self.assertGreater(len(support.weight_files(out)), 2, "several shards and an index")
        self.assertEqual(str(out), r.output)
        written = sum(len(data) for _, _, data in support.tensors(out).values())
        self.assertEqual(written, r.bytes_written, "bytes_written is the tensor data in the shards")
        self.assertEqual(len(support.tensors(out)), r.tensors)
        self.assertGreater(r.seconds, 0)
        self.assertGreater(r.peak_rss_bytes, 1 << 20)
        self.assertGreater(r.peak_working_bytes, 0)
        kinds = [e["event"] for e in seen]
        self.assertEqual("start", kinds[0])
        self.assertEqual("done", kinds[-1])
        self.assertEqual(list(range(r.tensors)), [e["index"] for e in seen if e["event"] == "tensor"])
        self.assertEqual(seen, r.events)

    def test_yaml_text_through_the_event_iterator(self):
        root = support.family()
        out = support.workdir() / "from-text"
        text = mergeforge.to_yaml(support.ties_config(root))
        with mergeforge.start_merge(text, out, launcher=support.LAUNCHER, threads=1,
                                   out_shard_size=str(support.SHARD)) as job:
            names = [e["name"] for e in job if e["event"] == "tensor"]
            done = job.wait()
        self.assertEqual(sorted(support.tensors(out)), sorted(names))
        self.assertEqual(str(out), done["output"])
        self.assertEqual(support.weight_files(support.reference_merge()), support.weight_files(out))

    def test_runtime_failure_raises_with_message_and_exit_code(self):
        root = support.family()
        cfg = support.ties_config(root)
        cfg["models"][1]["model"] = str(root / "missing-model")
        out = support.workdir() / "never"
        with self.assertRaises(mergeforge.MergeforgeError) as c:
            mergeforge.merge(cfg, out, launcher=support.LAUNCHER)
        e = c.exception
        self.assertEqual(1, e.exit_code)
        self.assertNotIsInstance(e, mergeforge.ConfigError)
        self.assertIn("missing-model", e.message)
        self.assertNotIn("\n", e.message)
        self.assertFalse(out.exists())
        self.assertEqual([], [n for n in os.listdir(out.parent) if ".mergeforge-" in n], "no temporary left")

    def test_usage_error_is_a_config_error_with_exit_code_2(self):
        out = support.workdir() / "never"
        with self.assertRaises(mergeforge.ConfigError) as c:
            mergeforge.merge(support.ties_config(support.family()), out, launcher=support.LAUNCHER, out_shard_size="lots")
        self.assertEqual(2, c.exception.exit_code)
        self.assertIn("--out-shard-size lots", c.exception.message)
        self.assertIsInstance(c.exception, ValueError)
        self.assertFalse(out.exists())


if __name__ == "__main__":
    unittest.main()
