"""Finding the mergeforge launcher (the `bin/mergeforge` script `make build` writes).

Order, first match wins:
  1. an explicit ``launcher=`` argument (or :func:`set_launcher`);
  2. ``MERGEFORGE_LAUNCHER``: the path of the launcher itself;
  3. ``MERGEFORGE_HOME``: a mergeforge checkout, its ``bin/mergeforge``;
  4. ``bin/mergeforge`` of the checkout this package lies in (``python/`` of the repo);
  5. ``mergeforge`` on ``PATH``.
"""

import os
import shutil
from pathlib import Path

_default = None


class LauncherNotFound(FileNotFoundError):
    """No mergeforge launcher was found; the message lists every place looked at."""


def set_launcher(path):
    """Makes ``path`` the launcher every later call uses unless given one (None: search again)."""
    global _default
    _default = None if path is None else str(path)


def _usable(p):
    return p is not None and os.path.isfile(p) and os.access(p, os.X_OK)


def find_launcher(launcher=None, env=None):
    """The launcher's path, searched in the order of this module's docstring."""
    env = os.environ if env is None else env
    tried = []
    explicit = launcher if launcher is not None else _default
    if explicit is not None:
        if _usable(str(explicit)):
            return str(explicit)
        raise LauncherNotFound(f"mergeforge launcher {explicit}: not an executable file; "
                               "run `make build` in the mergeforge checkout or pass the path of bin/mergeforge")
    for name, value in (("MERGEFORGE_LAUNCHER", env.get("MERGEFORGE_LAUNCHER")),
                        ("MERGEFORGE_HOME", env.get("MERGEFORGE_HOME"))):
        if not value:
            continue
        p = value if name == "MERGEFORGE_LAUNCHER" else os.path.join(value, "bin", "mergeforge")
        if _usable(p):
            return p
        raise LauncherNotFound(f"{name}={value}: {p} is not an executable file; "
                               "fix the variable or run `make build` in that checkout")
    repo = Path(__file__).resolve().parent.parent.parent / "bin" / "mergeforge"
    tried.append(str(repo))
    if _usable(str(repo)):
        return str(repo)
    on_path = shutil.which("mergeforge", path=env.get("PATH"))
    tried.append("mergeforge on PATH")
    if on_path:
        return on_path
    raise LauncherNotFound("no mergeforge launcher found (looked at " + ", ".join(tried)
                           + "); set MERGEFORGE_HOME to a built checkout (`make build`) or pass launcher=")
