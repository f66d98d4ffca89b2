"""mergeforge from Python: the standard library only, one mergeforge child process per call.

    import mergeforge
    r = mergeforge.merge({"merge_method": "linear", "models": [...]}, "out/", progress=True)
    print(r.output, r.seconds, r.bytes_written, r.peak_rss_bytes)

mergekit callers change one import line: ``from mergeforge.mergekit_compat import
MergeConfiguration, MergeOptions, run_merge``. The launcher is found as described in
:mod:`mergeforge._launcher` (``MERGEFORGE_HOME`` / ``MERGEFORGE_LAUNCHER`` / the checkout / PATH).
``mergeforge.Server()`` keeps one `mergeforge serve` JVM warm for many calls (docs/protocol.md).
"""

from ._api import CalibrationResult, aim, calibrate, eval, evaluate, merge, start_merge
from ._launcher import LauncherNotFound, find_launcher, set_launcher
from ._process import ConfigError, Job, MergeforgeError, MergeResult
from ._server import Server
from ._yaml import dump as to_yaml

__version__ = "0.1.0"

__all__ = ["merge", "start_merge", "aim", "calibrate", "eval", "evaluate", "MergeResult", "CalibrationResult", "Job",
           "MergeforgeError", "ConfigError", "LauncherNotFound", "find_launcher", "set_launcher", "to_yaml", "Server"]
