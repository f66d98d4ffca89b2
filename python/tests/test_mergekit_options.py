import unittest
import warnings

from mergeforge.mergekit_compat import MergeConfiguration, MergeOptions, parse_kmb

# mergekit 0.1.4's MergeOptions: its fields and defaults, in its order (docs/mergekit-compat.md)
MERGEKIT_0_1_4_FIELDS = [
    ("allow_crimes", False), ("transformers_cache", None), ("lora_merge_cache", None), ("lora_merge_dtype", None),
    ("cuda", False), ("device", None), ("low_cpu_memory", False), ("out_shard_size", 5_000_000_000),
    ("copy_tokenizer", True), ("clone_tensors", False), ("trust_remote_code", False), ("random_seed", None),
    ("lazy_unpickle", False), ("write_model_card", True), ("safe_serialization", True), ("verbosity", 0),
    ("quiet", False), ("read_to_gpu", False), ("multi_gpu", False), ("num_threads", None), ("gpu_rich", False),
    ("async_write", False), ("write_threads", 1),
]


class MergeOptionsTest(unittest.TestCase):
    def test_fields_and_defaults_are_mergekits(self):
        self.assertEqual(MERGEKIT_0_1_4_FIELDS, list(MergeOptions.model_fields.items()))
        o = MergeOptions()
        for name, default in MERGEKIT_0_1_4_FIELDS:
            self.assertEqual("cpu" if name == "device" else default, getattr(o, name), name)
        self.assertEqual([], o.to_flags(), "defaults need no flags")

    def test_mergekits_rules(self):
        rich = MergeOptions(gpu_rich=True)
        self.assertTrue(rich.cuda and rich.low_cpu_memory and rich.read_to_gpu and rich.multi_gpu)
        self.assertEqual("cuda", rich.device)
        self.assertEqual("cuda", MergeOptions(cuda=True).device)
        self.assertEqual("cuda:1", MergeOptions(device="cuda:1").device)
        self.assertEqual(2_000_000, MergeOptions(out_shard_size="2M").out_shard_size)
        with self.assertRaises(TypeError):
            MergeOptions().cuda = True
        self.assertTrue(MergeOptions().model_copy(update={"cuda": True}).cuda)
        self.assertEqual("cuda", MergeOptions().model_copy(update={"cuda": True}).device, "device re-derived on copy")
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            MergeOptions(from_the_future=1)
        self.assertIn("from_the_future", str(w[0].message))

    def test_flags_are_mergekit_yamls(self):
        o = MergeOptions(cuda=True, copy_tokenizer=False, random_seed=7, num_threads=3, out_shard_size="1B", verbosity=2,
                         allow_crimes=True, write_model_card=False, transformers_cache="/c", device="cuda:0")
        self.assertEqual(["--allow-crimes", "--transformers-cache", "/c", "--cuda", "--device", "cuda:0",
                          "--out-shard-size", "1000000000", "--no-copy-tokenizer", "--random-seed", "7",
                          "--no-write-model-card", "-v", "-v", "--num-threads", "3"], o.to_flags())

    def test_parse_kmb(self):
        self.assertEqual(5_000_000_000, parse_kmb("5B"))
        self.assertEqual(300_000, parse_kmb("300k"))
        self.assertEqual(42, parse_kmb("42"))
        self.assertEqual(42, parse_kmb(42))
        for bad in ("1.5B", "5GB", "", "-1"):
            with self.assertRaises(ValueError, msg=bad):
                parse_kmb(bad)


class MergeConfigurationTest(unittest.TestCase):
    def test_validate_and_read(self):
        c = MergeConfiguration.model_validate({"merge_method": "linear", "models": [{"model": "a"}, {"model": "b"}],
                                               "base_model": "a"})
        self.assertEqual("linear", c.merge_method)
        self.assertIsNone(c.dtype)
        self.assertEqual(["a", "b"], c.referenced_models())
        self.assertIs(c, MergeConfiguration.model_validate(c))
        self.assertEqual(c, MergeConfiguration.model_validate(c.model_dump()))
        self.assertEqual("merge_method: linear\nmodels:\n  - model: a\n  - model: b\nbase_model: a", c.to_yaml())
        s = MergeConfiguration.model_validate({"merge_method": "passthrough", "slices": [
            {"sources": [{"model": "x", "layer_range": [0, 2]}]}, {"sources": [{"model": "y", "layer_range": [1, 2]}]}]})
        self.assertEqual(["x", "y"], s.referenced_models())

    def test_mergekits_checks_raise_value_error(self):
        for bad in ({"models": [{"model": "a"}]},
                    {"merge_method": "linear"},
                    {"merge_method": "linear", "models": [{"model": "a"}], "slices": [{"sources": []}]},
                    {"merge_method": "linear", "models": [{"model": "a"}], "tokenizer_source": "base", "tokenizer": {"source": "base"}}):
            with self.assertRaises(ValueError, msg=str(bad)):
                MergeConfiguration.model_validate(bad)


if __name__ == "__main__":
    unittest.main()
