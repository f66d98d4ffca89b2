import os
import stat
import tempfile
import unittest
from pathlib import Path

from mergeforge import LauncherNotFound, find_launcher, set_launcher
from mergeforge import _launcher


def fake(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


class LauncherSearchTest(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="mergeforge-launcher-"))
        self.addCleanup(set_launcher, None)

    def test_order_explicit_then_env_then_checkout_then_path(self):
        explicit = fake(self.tmp / "a" / "mf")
        env_launcher = fake(self.tmp / "b" / "mf")
        home = self.tmp / "home"
        home_launcher = fake(home / "bin" / "mergeforge")
        on_path = fake(self.tmp / "p" / "mergeforge")
        env = {"MERGEFORGE_LAUNCHER": env_launcher, "MERGEFORGE_HOME": str(home), "PATH": str(self.tmp / "p")}
        self.assertEqual(explicit, find_launcher(explicit, env=env))
        set_launcher(explicit)
        self.assertEqual(explicit, find_launcher(env=env), "set_launcher is the default")
        set_launcher(None)
        self.assertEqual(env_launcher, find_launcher(env=env))
        del env["MERGEFORGE_LAUNCHER"]
        self.assertEqual(home_launcher, find_launcher(env=env))
        del env["MERGEFORGE_HOME"]
        checkout = Path(_launcher.__file__).resolve().parent.parent.parent / "bin" / "mergeforge"
        expected = str(checkout) if os.access(checkout, os.X_OK) else on_path
        self.assertEqual(expected, find_launcher(env=env))

    def test_a_wrong_setting_is_an_error_naming_it(self):
        with self.assertRaises(LauncherNotFound) as c:
            find_launcher(env={"MERGEFORGE_HOME": str(self.tmp / "nowhere")})
        self.assertIn("MERGEFORGE_HOME=" + str(self.tmp / "nowhere"), str(c.exception))
        with self.assertRaises(LauncherNotFound) as c:
            find_launcher(str(self.tmp / "missing"))
        self.assertIn(str(self.tmp / "missing"), str(c.exception))
        not_exec = self.tmp / "plain"
        not_exec.write_text("")
        with self.assertRaises(LauncherNotFound):
            find_launcher(env={"MERGEFORGE_LAUNCHER": str(not_exec)})

    def test_nothing_found_lists_where_it_looked(self):
        orig = _launcher.Path
        try:
            _launcher.Path = lambda *_: Path(self.tmp / "no" / "pkg" / "x.py")  # no checkout around the package
            with self.assertRaises(LauncherNotFound) as c:
                find_launcher(env={"PATH": str(self.tmp / "empty")})
        finally:
            _launcher.Path = orig
        self.assertIn("mergeforge on PATH", str(c.exception))
        self.assertIn("MERGEFORGE_HOME", str(c.exception))


if __name__ == "__main__":
    unittest.main()
