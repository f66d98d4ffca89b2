"""A PEP 517 build backend in the standard library only: `pip install ./python` then needs neither
setuptools nor wheel nor a network. It packs mergeforge/ into a pure-Python wheel (py3-none-any)."""

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _project():
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    fields = {k: re.search(rf'^{k} = "([^"]*)"', text, re.M).group(1) for k in ("name", "version", "description", "requires-python")}
    return fields


def _metadata(p):
    return (f"Metadata-Version: 2.1\nName: {p['name']}\nVersion: {p['version']}\nSummary: {p['description']}\n"
            f"Requires-Python: {p['requires-python']}\n")


def _sources():
    pkg = os.path.join(ROOT, "mergeforge")
    for dirpath, dirnames, filenames in os.walk(pkg):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for f in sorted(filenames):
            if f.endswith(".py"):
                full = os.path.join(dirpath, f)
                yield full, os.path.relpath(full, ROOT).replace(os.sep, "/")


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{arcname},sha256={digest},{len(data)}"


def _wheel(wheel_directory, files):
    p = _project()
    dist = f"{p['name']}-{p['version']}"
    path = os.path.join(wheel_directory, f"{dist}-py3-none-any.whl")
    files = list(files) + [
        (f"{dist}.dist-info/METADATA", _metadata(p).encode()),
        (f"{dist}.dist-info/WHEEL", b"Wheel-Version: 1.0\nGenerator: mergeforge_build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"),
        (f"{dist}.dist-info/entry_points.txt", b"[console_scripts]\nmergeforge = mergeforge.__main__:main\n"),
    ]
    record = [_record_line(a, d) for a, d in files] + [f"{dist}.dist-info/RECORD,,"]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for arcname, data in files:
            z.writestr(arcname, data)
        z.writestr(f"{dist}.dist-info/RECORD", "\n".join(record) + "\n")
    return os.path.basename(path)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = []
    for full, arc in _sources():
        with open(full, "rb") as f:
            files.append((arc, f.read()))
    return _wheel(wheel_directory, files)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, [("mergeforge_editable.pth", (ROOT + "\n").encode())])


def build_sdist(sdist_directory, config_settings=None):
    p = _project()
    base = f"{p['name']}-{p['version']}"
    path = os.path.join(sdist_directory, base + ".tar.gz")
    with tarfile.open(path, "w:gz") as t:
        for rel in ["pyproject.toml", "_build/mergeforge_build.py"] + [arc for _, arc in _sources()]:
            t.add(os.path.join(ROOT, rel), arcname=f"{base}/{rel}")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        meta = _metadata(p).encode()
        info.size = len(meta)
        t.addfile(info, io.BytesIO(meta))
    return os.path.basename(path)
