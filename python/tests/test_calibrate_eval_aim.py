import math
import unittest

import mergeforge
from tests import support


def setUpModule():
    support.require_launcher()


class CalibrateAimEvalTest(unittest.TestCase):
    def test_calibrate_then_aim_then_eval(self):
        root = support.family()
        d = support.workdir()
        stats = d / "act_mean.safetensors"
        c = mergeforge.calibrate(root / "base", stats, samples=2, seq_len=16, no_cache=True, launcher=support.LAUNCHER)
        self.assertEqual(str(stats), c.output)
        self.assertGreater(c.seconds, 0)
        base_tensors = support.tensors(root / "base")
        st = support.tensors(d)
        self.assertIn("model.layers.0.mlp.down_proj.weight", st)
        self.assertEqual("F32", st["model.layers.0.mlp.down_proj.weight"][0])
        self.assertEqual([base_tensors["model.layers.0.mlp.down_proj.weight"][1][1]], st["model.layers.0.mlp.down_proj.weight"][1],
                         "one value per input channel")

        merged = support.reference_merge()
        same = mergeforge.aim(merged, root / "base", d / "omega1", omega=1.0, stats=stats, launcher=support.LAUNCHER)
        self.assertEqual(support.tensors(merged), support.tensors(same.output), "omega 1 keeps the merge bit for bit")
        relaxed = mergeforge.aim(merged, root / "base", d / "omega0", omega=0.0, stats=stats, launcher=support.LAUNCHER)
        self.assertNotEqual(support.tensors(merged), support.tensors(relaxed.output))
        self.assertEqual(len(support.tensors(merged)), relaxed.tensors)

        text = d / "text.txt"
        text.write_text("the cat sat on the mat\nhello world\n")
        r = mergeforge.eval(relaxed.output, text=text, max_tokens=16, launcher=support.LAUNCHER)
        self.assertTrue(math.isclose(math.exp(r["text"]["mean_nll"]), r["text"]["perplexity"], rel_tol=1e-9))
        self.assertEqual(2, r["text"]["documents"])


if __name__ == "__main__":
    unittest.main()
