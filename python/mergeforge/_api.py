"""merge / calibrate / eval / aim: mergeforge's commands as Python calls, one child process each."""

import json
import os
import re
import tempfile
import time
from dataclasses import dataclass

from . import _yaml
from ._launcher import find_launcher
from ._process import Job, MergeResult, MergeforgeError, progress_callback


def _flags(options):
    """Keyword options as command-line flags: ``out_shard_size="1GB"`` -> ``--out-shard-size 1GB``;
    True -> the bare flag; False and None -> nothing; a list -> the flag followed by each value."""
    argv = []
    for name, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv.append(flag)
            argv.extend(os.fspath(v) if hasattr(v, "__fspath__") else str(v) for v in value)
        else:
            argv.extend([flag, os.fspath(value) if hasattr(value, "__fspath__") else str(value)])
    return argv


class _ConfigFile:
    """A config given as a dict, YAML text or a path, as a file the launcher can read (temporary unless a path)."""

    def __init__(self, config):
        self._tmp = None
        if hasattr(config, "model_dump") and not isinstance(config, dict):
            config = config.model_dump()
        if isinstance(config, dict):
            text = _yaml.dump(config)
        elif hasattr(config, "__fspath__"):
            self.path = os.fspath(config)
            return
        elif isinstance(config, str):
            if "\n" not in config and os.path.isfile(config):
                self.path = config
                return
            if "\n" not in config and config.endswith((".yml", ".yaml", ".json")):
                raise FileNotFoundError(f"config file {config} not found; give an existing path, YAML text or a dict")
            text = config
        else:
            raise TypeError(f"config must be a dict, YAML text or a path, not {type(config).__name__}")
        fd, self._tmp = tempfile.mkstemp(prefix="mergeforge-config-", suffix=".yml")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        self.path = self._tmp

    def close(self):
        if self._tmp is not None:
            try:
                os.unlink(self._tmp)
            except FileNotFoundError:
                pass
            self._tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _command(launcher, *argv):
    return [find_launcher(launcher), *argv]


def start_merge(config, out_path, *, launcher=None, cwd=None, env=None, **options):
    """Starts ``mergeforge merge`` with ``--events json`` and returns the running :class:`Job`:
    iterate it for the events, then call ``wait()`` (or use :func:`merge`). The config file of a
    dict or YAML text is removed when the job is finished with (``with`` block or ``wait``)."""
    cfg = _ConfigFile(config)
    try:
        job = Job(_command(launcher, "merge", cfg.path, os.fspath(out_path), "--events", "json", *_flags(options)),
                  cwd=cwd, env=env)
    except BaseException:
        cfg.close()
        raise
    job._cleanup = cfg
    return job


def _finish(job, progress):
    try:
        with job:
            done = job.wait(progress_callback(progress))
    finally:
        cleanup = getattr(job, "_cleanup", None)
        if cleanup is not None:
            cleanup.close()
    return MergeResult.from_done(done, job.events)


def merge(config, out_path, *, progress=None, launcher=None, cwd=None, env=None, **options):
    """Merges per ``config`` (a dict, YAML text or a path) into ``out_path`` and returns a
    :class:`MergeResult` (output, seconds, bytes read and written, peak memory).

    ``options`` are `mergeforge merge`'s flags with ``_`` for ``-``: ``seed=3``,
    ``out_shard_size="2GB"``, ``backend="native"``, ``device="cuda:0"``, ``threads=2``,
    ``overwrite=True``, ``allow_nonfinite=True``, ... ``progress``: a callable taking each event
    dict, or True for a progress bar. Raises :class:`MergeforgeError` (``ConfigError`` for exit 2)
    carrying mergeforge's one-line message and exit code; nothing is then left at ``out_path``."""
    return _finish(start_merge(config, out_path, launcher=launcher, cwd=cwd, env=env, **options), progress)


def aim(merged, base, output, *, omega=0.4, stats=None, data=None, progress=None, launcher=None, cwd=None, env=None, **options):
    """AIM on an already merged model (`mergeforge aim`): returns a :class:`MergeResult`.
    Give ``stats`` (a statistics file) or ``data`` (calibration text); other ``options``:
    ``scaling``, ``power``, ``overwrite``, ``backend``, ``threads``, ..."""
    argv = _command(launcher, "aim", "--merged", os.fspath(merged), "--base", os.fspath(base), "--omega", str(omega),
                    "-o", os.fspath(output), "--events", "json", *_flags(dict(stats=stats, data=data, **options)))
    return _finish(Job(argv, cwd=cwd, env=env), progress)


@dataclass
class CalibrationResult:
    """A statistics file written by :func:`calibrate`; ``seconds`` as mergeforge measured it."""
    output: str
    seconds: float


def calibrate(model, output, *, stat="act_mean", launcher=None, cwd=None, env=None, **options):
    """`mergeforge calibrate`: the AIM statistic (``stat="act_mean"``) or RegMean's Grams
    (``stat="gram"``) of ``model`` into the safetensors file ``output``. ``options``: ``data``,
    ``samples``, ``seq_len``, ``seed``, ``device``, ``threads``, ``no_cache``."""
    argv = _command(launcher, "calibrate", os.fspath(model), "--stat", stat, "-o", os.fspath(output), *_flags(options))
    t0 = time.monotonic()
    with Job(argv, json_events=False, cwd=cwd, env=env) as job:
        job.wait()
    seconds = time.monotonic() - t0
    for line in reversed(job.stderr_lines):
        m = re.match(r"^wrote .* \(([0-9.]+) s\)$", line)
        if m:
            seconds = float(m.group(1))
            break
    return CalibrationResult(os.fspath(output), seconds)


def eval(model, *, text=None, tasks=None, launcher=None, cwd=None, env=None, **options):  # noqa: A001 - mirrors the command
    """`mergeforge eval --json`: returns its result object as a dict (``text``: ``mean_nll``,
    ``perplexity``, ``tokens``, ``documents``; ``tasks``: per file ``accuracy``, ``answer_nll``, ...).
    ``tasks`` is one path or a list; ``options``: ``max_tokens``, ``rows``, ``device``, ``threads``."""
    if isinstance(tasks, (str, os.PathLike)):
        tasks = [tasks]
    argv = _command(launcher, "eval", os.fspath(model), "--json", *_flags(dict(text=text, tasks=tasks, **options)))
    with Job(argv, json_events=False, cwd=cwd, env=env) as job:
        job.wait()
    for line in reversed(job.stdout_lines):
        if line.startswith("{"):
            return json.loads(line)
    raise MergeforgeError("mergeforge eval printed no JSON result", 1, argv, "\n".join(job.stderr_lines))


evaluate = eval
