"""A client of `mergeforge serve` over its stdin/stdout (docs/protocol.md): one warm JVM for many calls.

    with mergeforge.Server() as srv:
        for w in (0.2, 0.4, 0.6):
            r = srv.merge(config_for(w), f"out/w{w}", overwrite=True)

Calls take the same arguments and return the same results as the module-level functions, and
raise the same errors; they may be made from several threads at once (the server queues them).
"""

import itertools
import json
import os
import queue
import subprocess
import threading

from ._launcher import find_launcher
from ._process import MergeResult, MergeforgeError, error_for, last_error_line, progress_callback
from ._api import CalibrationResult

_EOF = object()


class Server:
    """Starts `mergeforge serve` (``memory_budget="8GB"``, ``max_jobs=2`` are its options) and
    talks to it over pipes. Use as a context manager, or call :meth:`close`."""

    def __init__(self, *, launcher=None, memory_budget=None, max_jobs=None, cwd=None, env=None):
        argv = [find_launcher(launcher), "serve"]
        if memory_budget is not None:
            argv += ["--memory-budget", str(memory_budget)]
        if max_jobs is not None:
            argv += ["--max-jobs", str(max_jobs)]
        self._argv = argv
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      cwd=cwd, env=env, text=True, encoding="utf-8", errors="replace", bufsize=1)
        self._stderr = []
        self._pending = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        ready = self._proc.stdout.readline()
        try:
            self.ready = json.loads(ready)
        except ValueError:
            self.ready = None
        if not self.ready or self.ready.get("event") != "ready":
            code = self._proc.wait()
            for pipe in (self._proc.stdin, self._proc.stdout):
                pipe.close()
            raise error_for(code if code else 1, last_error_line(self._stderr) or "mergeforge serve did not start",
                            argv, "\n".join(self._stderr))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _drain_stderr(self):
        for line in self._proc.stderr:
            self._stderr.append(line.rstrip("\n"))

    def _read(self):
        for line in self._proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                q = self._pending.get(msg.get("id"))
            if q is not None:
                q.put(msg)
        with self._lock:
            for q in self._pending.values():
                q.put(_EOF)

    def request(self, op, progress=None, request_id=None, **keys):
        """Sends one request and returns its ``result`` object; ``progress`` is given every other
        line (queued, running, the run's events). Raises MergeforgeError for an ``error`` line."""
        rid = request_id if request_id is not None else f"py-{next(self._ids)}"
        q = queue.Queue()
        with self._lock:
            if self._proc.poll() is not None:
                raise MergeforgeError(f"mergeforge serve has exited ({self._proc.returncode})", 1, self._argv)
            self._pending[rid] = q
            self._proc.stdin.write(json.dumps(dict(id=rid, op=op, **keys)) + "\n")
            self._proc.stdin.flush()
        callback = progress_callback(progress)
        events = []
        try:
            while True:
                msg = q.get()
                if msg is _EOF:
                    code = self._proc.wait()
                    raise MergeforgeError(f"mergeforge serve exited ({code}) before answering {rid}: "
                                          + (last_error_line(self._stderr) or "no message"), code or 1, self._argv,
                                          "\n".join(self._stderr))
                kind = msg.get("event")
                if kind == "result":
                    return msg["result"], events
                if kind == "error":
                    e = error_for(msg.get("exit_code", 1), msg.get("message", "unknown error"), self._argv, "")
                    e.cancelled = bool(msg.get("cancelled"))
                    raise e
                events.append(msg)
                if callback is not None:
                    callback(msg)
        finally:
            with self._lock:
                self._pending.pop(rid, None)

    @staticmethod
    def _config_keys(config):
        if hasattr(config, "model_dump") and not isinstance(config, dict):
            config = config.model_dump()
        if isinstance(config, dict):
            return {"config": config}
        if hasattr(config, "__fspath__"):
            return {"config": os.fspath(config)}
        if isinstance(config, str):
            if "\n" not in config and os.path.isfile(config):
                return {"config": config}
            return {"config_yaml": config}
        raise TypeError(f"config must be a dict, YAML text or a path, not {type(config).__name__}")

    @staticmethod
    def _paths(keys):
        return {k: (os.fspath(v) if hasattr(v, "__fspath__") else v) for k, v in keys.items() if v is not None}

    def merge(self, config, out_path, *, progress=None, request_id=None, **options):
        """As :func:`mergeforge.merge`; ``options`` are the protocol's merge keys (``seed``,
        ``out_shard_size`` in bytes, ``overwrite``, ``allow_nonfinite``, ``backend``, ``device``, ``threads``)."""
        result, events = self.request("merge", progress, request_id, output=os.fspath(out_path), **self._config_keys(config),
                                      **self._paths(options))
        return MergeResult.from_done(result, events)

    def plan(self, config, out_path, **options):
        """A dry run: the plan and the peak working-memory estimate, as a dict (nothing is written)."""
        return self.request("plan", None, None, output=os.fspath(out_path), **self._config_keys(config), **self._paths(options))[0]

    def calibrate(self, model, output, *, stat="act_mean", progress=None, request_id=None, **options):
        result, _ = self.request("calibrate", progress, request_id, model=os.fspath(model), output=os.fspath(output), stat=stat,
                                 **self._paths(options))
        return CalibrationResult(result["output"], float(result["seconds"]))

    def eval(self, model, *, text=None, tasks=None, progress=None, request_id=None, **options):
        if isinstance(tasks, (str, os.PathLike)):
            tasks = [tasks]
        keys = self._paths(dict(text=text, **options))
        if tasks is not None:
            keys["tasks"] = [os.fspath(t) for t in tasks]
        return self.request("eval", progress, request_id, model=os.fspath(model), **keys)[0]

    def merge_eval(self, config, *, text=None, tasks=None, mode=None, progress=None, request_id=None, **options):
        """One search-loop candidate: merges ``config`` in the server's memory and evaluates it there,
        writing no checkpoint (the ``merge_eval`` request, docs/protocol.md). ``mode``: ``"memory"``
        (the whole candidate held), ``"layers"`` (each layer merged as the forward pass reaches it,
        then dropped) or ``"auto"``/None (memory when its predicted peak fits ``max_memory``, else
        layers). Returns the result dict: ``eval`` (as :meth:`eval`'s), ``tensors``, ``merge_seconds``,
        ``eval_seconds``, ``peak_working_bytes``, ``mode`` (the one that ran), ``peak_held_bytes``."""
        if isinstance(tasks, (str, os.PathLike)):
            tasks = [tasks]
        if mode is not None:
            options["mode"] = mode
        keys = self._paths(dict(text=text, **options))
        if tasks is not None:
            keys["tasks"] = [os.fspath(t) for t in tasks]
        return self.request("merge_eval", progress, request_id, **self._config_keys(config), **keys)[0]

    def cancel(self, request_id):
        """Asks the job ``request_id`` to stop; its own call then raises with ``cancelled`` True."""
        return self.request("cancel", None, None, target=request_id)[0]

    def status(self, request_id=None):
        return self.request("status", None, None, **({"target": request_id} if request_id is not None else {}))[0]

    def close(self):
        """Lets queued and running jobs finish, then waits for the server to exit."""
        if self._proc.poll() is None:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
            self._proc.wait()
        if hasattr(self, "_reader"):
            self._reader.join(timeout=5)
        for pipe in (self._proc.stdout, self._proc.stderr):
            try:
                pipe.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is not None and self._proc.poll() is None:
            self._proc.terminate()
        self.close()
        return False
