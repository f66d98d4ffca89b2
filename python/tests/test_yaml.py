import json
import unittest

from mergeforge import to_yaml
from mergeforge._api import _ConfigFile


class YamlWriterTest(unittest.TestCase):
    CONFIG = {
        "merge_method": "ties",
        "base_model": "org/base@main",
        "models": [
            {"model": "./ft one", "parameters": {"weight": [0.3, 0.7], "density": 0.5}},
            {"model": "yes", "parameters": {"weight": [{"filter": "mlp", "value": 0.2}, {"value": 1}]}},
        ],
        "parameters": {"normalize": True, "lambda": 1.0, "eps": 1e-8, "big": 2.5e+20, "t": float("inf")},
        "dtype": None,
        "chat_template": "{{ x }}: \"q\"\n# not a comment",
        "empty": {},
        "none_list": [],
        "123": "0.5",
    }

    def test_exact_text(self):
        self.assertEqual(
            "merge_method: ties\n"
            "base_model: org/base@main\n"
            "models:\n"
            "  - model: \"./ft one\"\n"
            "    parameters:\n"
            "      weight: [0.3, 0.7]\n"
            "      density: 0.5\n"
            "  - model: \"yes\"\n"
            "    parameters:\n"
            "      weight:\n"
            "        - filter: mlp\n"
            "          value: 0.2\n"
            "        - value: 1\n"
            "parameters:\n"
            "  normalize: true\n"
            "  lambda: 1.0\n"
            "  eps: 1.0e-08\n"
            "  big: 2.5e+20\n"
            "  t: .inf\n"
            "dtype: null\n"
            "chat_template: \"{{ x }}: \\\"q\\\"\\n# not a comment\"\n"
            "empty: {}\n"
            "none_list: []\n"
            "\"123\": \"0.5\"\n",
            to_yaml(self.CONFIG))

    def test_a_yaml_reader_reads_back_the_same_values(self):
        try:
            import yaml  # optional: only to cross-check with an independent reader
        except ImportError:
            self.skipTest("PyYAML not installed: the exact-text test covers the writer")
        self.assertEqual(self.CONFIG, yaml.safe_load(to_yaml(self.CONFIG)))

    def test_refuses_what_a_config_cannot_hold(self):
        with self.assertRaises(TypeError):
            to_yaml({"x": object()})
        with self.assertRaises(TypeError):
            to_yaml({1: "a"})
        with self.assertRaises(TypeError):
            to_yaml(["not", "a", "dict"])


class ConfigArgumentTest(unittest.TestCase):
    def test_dict_text_and_path(self):
        with _ConfigFile({"merge_method": "linear"}) as f:
            with open(f.path, encoding="utf-8") as fp:
                self.assertEqual("merge_method: linear\n", fp.read())
            tmp = f.path
        with self.assertRaises(FileNotFoundError):
            open(tmp)
        with _ConfigFile("merge_method: slerp\nt: 0.5\n") as f:
            with open(f.path, encoding="utf-8") as fp:
                self.assertEqual("merge_method: slerp\nt: 0.5\n", fp.read())
        with _ConfigFile(json.dumps({"merge_method": "linear"})) as f:
            with open(f.path, encoding="utf-8") as fp:
                self.assertEqual({"merge_method": "linear"}, json.load(fp), "one-line JSON text is a config too")
        with _ConfigFile(__file__) as f:
            self.assertEqual(__file__, f.path, "an existing path is used as is")
        with self.assertRaises(FileNotFoundError):
            _ConfigFile("/no/such/config.yml")
        with self.assertRaises(TypeError):
            _ConfigFile(42)


if __name__ == "__main__":
    unittest.main()
