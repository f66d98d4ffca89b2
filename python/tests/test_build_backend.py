"""`pip install ./python` needs only the standard library: the in-tree backend builds a correct wheel."""

import base64
import csv
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import unittest
import zipfile
from pathlib import Path

PYTHON_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PYTHON_DIR / "_build"))
import mergeforge_build  # noqa: E402


class BuildBackendTest(unittest.TestCase):
    def test_wheel_is_complete_and_its_record_true(self):
        tmp = Path(tempfile.mkdtemp(prefix="mergeforge-wheel-"))
        name = mergeforge_build.build_wheel(str(tmp))
        self.assertEqual("mergeforge-0.1.0-py3-none-any.whl", name)
        with zipfile.ZipFile(tmp / name) as z:
            names = set(z.namelist())
            sources = {str(p.relative_to(PYTHON_DIR)) for p in (PYTHON_DIR / "mergeforge").glob("*.py")}
            self.assertEqual(sources, {n for n in names if n.startswith("mergeforge/")})
            self.assertIn("Name: mergeforge\nVersion: 0.1.0\n", z.read("mergeforge-0.1.0.dist-info/METADATA").decode())
            self.assertIn("Root-Is-Purelib: true", z.read("mergeforge-0.1.0.dist-info/WHEEL").decode())
            self.assertIn("mergeforge = mergeforge.__main__:main", z.read("mergeforge-0.1.0.dist-info/entry_points.txt").decode())
            rows = list(csv.reader(io.StringIO(z.read("mergeforge-0.1.0.dist-info/RECORD").decode())))
            self.assertEqual(names, {r[0] for r in rows})
            for path, digest, size in rows:
                if path.endswith("RECORD"):
                    continue
                data = z.read(path)
                expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                self.assertEqual(("sha256=" + expected, str(len(data))), (digest, size), path)
            site = tmp / "site"
            z.extractall(site)
        # the installed copy, away from the checkout, imports and finds the launcher through MERGEFORGE_HOME
        env = dict(os.environ, PYTHONPATH=str(site), MERGEFORGE_HOME=str(PYTHON_DIR.parent))
        env.pop("MERGEFORGE_LAUNCHER", None)
        p = subprocess.run([sys.executable, "-c", "import mergeforge, sys; print(mergeforge.__file__); print(mergeforge.find_launcher())"],
                           env=env, cwd=tmp, capture_output=True, text=True)
        built = os.access(PYTHON_DIR.parent / "bin" / "mergeforge", os.X_OK)
        if built:  # `python -m mergeforge` (the installed `mergeforge` command's code) runs the launcher with its arguments
            v = subprocess.run([sys.executable, "-m", "mergeforge", "--version"], env=env, cwd=tmp, capture_output=True, text=True)
            self.assertEqual((0, "mergeforge 0.1.0"), (v.returncode, v.stdout.strip()), v.stderr)
        self.assertEqual(0 if built else 1, p.returncode, p.stderr)
        self.assertTrue(p.stdout.startswith(str(site)), p.stdout)
        if built:
            self.assertEqual(str(PYTHON_DIR.parent / "bin" / "mergeforge"), p.stdout.splitlines()[1])
        else:
            self.assertIn("MERGEFORGE_HOME=", p.stderr)

    def test_sdist_holds_what_a_wheel_is_built_from(self):
        tmp = Path(tempfile.mkdtemp(prefix="mergeforge-sdist-"))
        import tarfile
        with tarfile.open(tmp / mergeforge_build.build_sdist(str(tmp))) as t:
            names = set(t.getnames())
        for must in ("mergeforge-0.1.0/pyproject.toml", "mergeforge-0.1.0/_build/mergeforge_build.py",
                     "mergeforge-0.1.0/mergeforge/__init__.py", "mergeforge-0.1.0/PKG-INFO"):
            self.assertIn(must, names)


if __name__ == "__main__":
    unittest.main()
