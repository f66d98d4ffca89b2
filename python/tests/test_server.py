"""mergeforge.Server: the same calls through one warm `mergeforge serve` (docs/protocol.md)."""

import os
import unittest

import mergeforge
from tests import support

# The launcher to test against: this checkout's, or MERGEFORGE_TEST_SERVE_LAUNCHER (another build with `serve`).
LAUNCHER = os.environ.get("MERGEFORGE_TEST_SERVE_LAUNCHER") or str(support.LAUNCHER)
_server = None


def setUpModule():
    global _server
    support.require_launcher()
    try:
        _server = mergeforge.Server(launcher=LAUNCHER)
    except mergeforge.ConfigError as e:
        if "serve" in e.message:
            raise unittest.SkipTest(f"this build has no `mergeforge serve` ({e.message})")
        raise


def tearDownModule():
    if _server is not None:
        _server.close()


class ServerTest(unittest.TestCase):
    def test_merge_equals_the_command_line_merge(self):
        out = support.workdir() / "served"
        seen = []
        r = _server.merge(support.ties_config(support.family()), out, out_shard_size=support.SHARD, progress=seen.append)
        self.assertEqual(support.weight_files(support.reference_merge()), support.weight_files(out))
        self.assertEqual(len(support.tensors(out)), r.tensors)
        self.assertEqual(sum(len(t[2]) for t in support.tensors(out).values()), r.bytes_written)
        self.assertIn("tensor", [e["event"] for e in seen])
        # the same config as YAML text, a second merge on the same JVM
        out2 = support.workdir() / "served-text"
        _server.merge(mergeforge.to_yaml(support.ties_config(support.family())), out2, out_shard_size=support.SHARD)
        self.assertEqual(support.weight_files(out), support.weight_files(out2))

    def test_merge_eval_scores_like_a_merge_then_an_eval_and_writes_nothing(self):
        d = support.workdir()
        text = d / "sweep.txt"
        text.write_text("the cat sat on the mat\nhello world\n")
        before = set(os.listdir(d))
        r = _server.merge_eval(support.ties_config(support.family()), text=text, max_tokens=16)
        self.assertEqual(set(os.listdir(d)), before, "no checkpoint written")
        self.assertGreater(r["tensors"], 0)
        out = d / "sweep-on-disk"
        _server.merge(support.ties_config(support.family()), out)
        e = _server.eval(out, text=text, max_tokens=16)
        self.assertEqual(e["text"]["mean_nll"], r["eval"]["text"]["mean_nll"])
        self.assertEqual(e["text"]["tokens"], r["eval"]["text"]["tokens"])
        # each layer merged as the forward pass reaches it: the same score, one layer held instead of the model
        seen = []
        lay = _server.merge_eval(support.ties_config(support.family()), text=text, max_tokens=16, mode="layers", progress=seen.append)
        self.assertEqual("layers", lay["mode"])
        self.assertEqual(r["eval"]["text"]["mean_nll"], lay["eval"]["text"]["mean_nll"])
        self.assertLess(lay["peak_held_bytes"], r["peak_held_bytes"])
        self.assertTrue(any(e.get("message", "").startswith("candidate mode: layers") for e in seen), seen)
        self.assertEqual(set(os.listdir(d)), before | {"sweep-on-disk"}, "no checkpoint written")
        with self.assertRaises(mergeforge.ConfigError) as c:
            _server.merge_eval(support.ties_config(support.family()), text=text, mode="sideways")
        self.assertIn("sideways", c.exception.message)

    def test_plan_and_errors(self):
        p = _server.plan(support.ties_config(support.family()), support.workdir() / "never")
        self.assertEqual("ties", p["method"])
        self.assertGreater(p["peak_working_bytes"], 0)
        cfg = support.ties_config(support.family())
        cfg["models"][0]["model"] = str(support.family() / "missing-model")
        out = support.workdir() / "never"
        with self.assertRaises(mergeforge.MergeforgeError) as c:
            _server.merge(cfg, out)
        self.assertIn("missing-model", c.exception.message)
        self.assertFalse(c.exception.cancelled)
        self.assertFalse(out.exists())
        with self.assertRaises(mergeforge.ConfigError):
            _server.merge(support.ties_config(support.family()), out, colour="blue")
        self.assertEqual(0, _server.status()["running"], "the server carries on")


if __name__ == "__main__":
    unittest.main()
